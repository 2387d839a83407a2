# Host emulation — never copied to a board. The board's flash partition "vfs" as the block device
# the port gives LittleFS (ports/esp32/esp32_partition.c): 4096-byte blocks, readblocks and
# writeblocks with an offset, ioctl 6 to erase a block; a plain writeblocks erases first. Its
# contents are the device's flash.img under $EMU_DIR. A power cut can be injected at any program
# or erase (EMU_CUT_AT=N cuts the N-th): that operation is torn part way (a random prefix of it
# reaches the flash) and nothing after it does; the board stops with exit status 99.
import os
import sys

import utime

BLOCK = 4096
BLOCKS = 512  # a 2 MiB "vfs" partition, as in the port's default partition table
CUT_EXIT = 99
_FF = b"\xff" * 256  # small on purpose: the emulation takes as little of the board's heap


class Flash:
    def __init__(self, path, blocks=BLOCKS):
        self.f = open(path, "r+b")
        self.blocks = blocks
        self.programs = 0  # program (write) operations since power-on
        self.erases = 0
        self.us = 0  # host time spent in this emulation (what on a board is the C driver)
        cut = os.getenv("EMU_CUT_AT")
        self.cut_at = int(cut) if cut else 0
        self.dead = False

    def _op(self):
        """Count one program or erase; True if the power fails during this one."""
        if self.dead:
            return True
        n = self.programs + self.erases
        return self.cut_at and n == self.cut_at

    def _cut(self):
        if not self.dead:  # anything the dying firmware still tries reaches nothing
            self.dead = True
            self.f.flush()
            print("emu: power cut at flash operation", self.cut_at)
        sys.exit(CUT_EXIT)

    def _torn(self, n):
        return int.from_bytes(os.urandom(2), "big") % (n + 1)

    def readblocks(self, block, buf, offset=0):
        t = utime.ticks_us()
        self.f.seek(block * BLOCK + offset)
        self.f.readinto(buf)
        self.us += utime.ticks_diff(utime.ticks_us(), t)

    def _erase(self, block):
        self.erases += 1
        n = BLOCK
        cut = self._op()
        if cut:
            n = self._torn(BLOCK) & ~0xFF
        if not self.dead:
            self.f.seek(block * BLOCK)
            for _ in range(n // len(_FF)):
                self.f.write(_FF)
        if cut:
            self._cut()

    def writeblocks(self, block, buf, offset=None):
        t = utime.ticks_us()
        if offset is None:  # a simple write erases the blocks first
            for b in range(block, block + (len(buf) + BLOCK - 1) // BLOCK):
                self._erase(b)
            offset = 0
        self.programs += 1
        cut = self._op()
        data = buf
        if cut:
            data = memoryview(buf)[: self._torn(len(buf))]
        if not self.dead:
            self.f.seek(block * BLOCK + offset)
            self.f.write(data)
        if cut:
            self._cut()
        self.us += utime.ticks_diff(utime.ticks_us(), t)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return BLOCK
        if op == 6:  # erase
            t = utime.ticks_us()
            self._erase(arg)
            self.us += utime.ticks_diff(utime.ticks_us(), t)
            return 0
        if op == 3:  # sync
            self.f.flush()
        return 0
