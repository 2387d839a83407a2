# Host emulation — never copied to a board. What the ESP32 does before boot.py: the clock starts
# (from 2000-01-01 on a power-on), the flash partition is mounted at '/' as LittleFS v2 (made on
# first boot, as the port's inisetup does), the working directory is '/' and sys.path is the
# port's. The host's filesystem stays reachable to the emulation only, at /_host.
import os
import sys

import emu_clock
import emu_flash
import emu_registry as reg
import vfs

bdev = None


def power_on():
    """Boot this emulated board (EMU_DEVICE); EMU_BOOT=reset keeps its clock (software reset)."""
    global bdev
    emu_clock.power_on(os.getenv("EMU_BOOT") != "reset")
    # mbedTLS checks certificate dates against the board's RTC, as ports/esp32/main.c sets it
    # (platform_mbedtls_time: the RTC's seconds since 2000 plus 946684800)
    import emutls
    import time as board_time  # the emulated one: seconds since 2000

    emutls.time_source(lambda: board_time.time() + board_time._EPOCH_2000)
    bdev = emu_flash.Flash(reg.path("dev", reg.device(), "flash.img"))
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(), "/_host")
    reg.HOST = "/_host"
    try:
        vfs.mount(bdev, "/")
    except OSError:
        _inisetup()
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    # On a board these are C modules that cost the firmware no heap: load them now, before the
    # firmware starts, so the harness can measure their heap once and add it (upy_harness).
    import esp32

    esp32._part()  # the NVS partition's index, as IDF's nvs_flash_init reads it at boot
    import machine  # noqa: F401
    import network  # noqa: F401
    import socket
    import time  # noqa: F401

    sys.modules["usocket"] = socket  # on a board, `import usocket` is the port's socket


_BOOT_PY = """\
# This file is executed on every boot (including wake-boot from deepsleep)
#import esp
#esp.osdebug(None)
#import webrepl
#webrepl.start()
"""
CORRUPT_EXIT = 98


def _inisetup():
    """ports/esp32/modules/_boot.py and inisetup.py: a filesystem that does not mount is made
    afresh (with its boot.py) only if the flash's first block is erased, as on a new chip;
    otherwise the port prints that it is corrupted, every 3 s for ever, and runs nothing (here:
    once, then the board stops, exit 98)."""
    buf = bytearray(bdev.ioctl(5, 0))
    bdev.readblocks(0, buf)
    for b in buf:
        if b != 0xFF:
            print("The filesystem appears to be corrupted. If you had important data there, you\n"
                  "may want to make a flash snapshot to try to recover it. Otherwise, perform\n"
                  "factory reprogramming of MicroPython firmware (completely erase flash, "
                  "followed\nby firmware programming).\n")
            sys.exit(CORRUPT_EXIT)
    print("Performing initial setup")
    vfs.VfsLfs2.mkfs(bdev)
    vfs.mount(bdev, "/")
    with open("/boot.py", "w") as f:
        f.write(_BOOT_PY)


def run_main(main=True):
    """Run boot.py then main.py from the flash, as the port does after _boot.py (main.py only
    in the friendly REPL mode: not after a soft reset from the raw REPL)."""
    for name in ("boot.py", "main.py") if main else ("boot.py",):
        try:
            os.stat(name)
        except OSError:
            continue
        with open(name) as f:
            code = f.read()
        # the board's own files, run as the port's pyexec_file runs them
        exec(compile(code, name, "exec"), {"__name__": "__main__"})  # noqa: S102
        del code
