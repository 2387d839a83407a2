# Host emulation — never copied to a board. The ESP32 `machine` module as the firmware uses it:
# unique_id, reset, RTC (ports/esp32/machine_rtc.c: datetime from 2000-01-01, memory() that
# survives a reset but not a power-on), and I2C with an optional DS3231 real-time clock.
import hashlib
import sys

import emu_clock
import emu_registry as reg
import time

PWRON_RESET = 1
HARD_RESET = 2
SOFT_RESET = 5
_ENODEV = 19


def unique_id():
    """6 bytes per emulated device (EMU_DEVICE), as the ESP32's eFuse MAC."""
    return hashlib.sha256(b"emu-uid:" + reg.device().encode()).digest()[:6]


def reset():
    """A software reset: the harness starts the board again; clock and RTC memory stay."""
    print("machine.reset()")
    sys.exit(75)


class RTC:
    def datetime(self, dt=None):
        """(year, month, day, weekday, hours, minutes, seconds, microseconds), or set it."""
        if dt is None:
            ms = emu_clock.board_ms()
            tm = time.gmtime(ms // 1000)
            return (tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], (ms % 1000) * 1000)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        emu_clock.set_board_ms(secs * 1000 + (dt[7] if len(dt) > 7 else 0) // 1000)
        return None

    def init(self, dt):
        self.datetime(dt)

    def memory(self, data=None):
        return emu_clock.memory(data)


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2

    def __init__(self, pin, *args, **kw):
        self.pin = pin


def _bcd(v):
    return (v // 10) << 4 | v % 10


def _unbcd(b):
    return (b >> 4) * 10 + (b & 0x0F)


class _DS3231:
    """A DS3231 on the bus: battery-backed, it keeps the world's time plus whatever offset it
    was set to; its oscillator-stop flag (status bit 7) is set until the time is first set."""

    ADDR = 0x68

    def __init__(self):
        self.file = reg.path("dev", reg.device(), "ds3231.json")

    def fitted(self):
        return reg.read_json(self.file) is not None

    def _state(self):
        st = reg.read_json(self.file)
        if st is None:
            raise OSError(_ENODEV)
        return st

    def read(self, mem, n):
        st = self._state()
        secs = emu_clock.world_unix() + st["offset"] - 946684800  # DS3231 counts 2000..2099
        tm = time.gmtime(secs)
        regs = bytearray(19)
        regs[0:7] = bytes((_bcd(tm[5]), _bcd(tm[4]), _bcd(tm[3]), tm[6] + 1, _bcd(tm[2]),
                           _bcd(tm[1]), _bcd(tm[0] % 100)))
        regs[0x0F] = 0x80 if st["osf"] else 0
        return bytes(regs[mem: mem + n])

    def write(self, mem, buf):
        st = self._state()
        regs = bytearray(self.read(0, 19))
        regs[mem: mem + len(buf)] = buf
        if mem < 7:
            secs = time.mktime((2000 + _unbcd(regs[6]), _unbcd(regs[5] & 0x1F), _unbcd(regs[4]),
                                _unbcd(regs[2] & 0x3F), _unbcd(regs[1]), _unbcd(regs[0]), 0, 0))
            st["offset"] = secs + 946684800 - emu_clock.world_unix()
        if mem <= 0x0F < mem + len(buf):
            st["osf"] = st["osf"] and bool(regs[0x0F] & 0x80)
        reg.write_json(self.file, st)


class I2C:
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._rtc = _DS3231()

    def scan(self):
        return [_DS3231.ADDR] if self._rtc.fitted() else []

    def _dev(self, addr):
        if addr != _DS3231.ADDR:
            raise OSError(_ENODEV)
        return self._rtc

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        return self._dev(addr).read(memaddr, nbytes)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        buf[:] = self._dev(addr).read(memaddr, len(buf))

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._dev(addr).write(memaddr, bytes(buf))


def reset_cause():
    return PWRON_RESET if emu_clock.cold else HARD_RESET


def freq(hz=None):
    return 240000000 if hz is None else None
