# Host emulation — never copied to a board. The ESP32 `machine` module's unique_id, reset and RTC.
import hashlib
import sys
import time

import emu_registry as reg


def unique_id():
    """6 bytes per emulated device (EMU_DEVICE), as the ESP32's eFuse MAC."""
    return hashlib.sha256(b"emu-uid:" + reg.device().encode()).digest()[:6]


def reset():
    print("machine.reset()")
    sys.exit(75)


class RTC:
    """The board clock. The unix port's clock cannot be set; the offset is kept per device."""

    def _file(self):
        return reg.ensure_dir("dev", reg.device()) + "/rtc.json"

    def datetime(self, dt=None):
        if dt is None:
            off = reg.read_json(self._file(), 0)
            tm = time.gmtime(int(time.time()) + off)
            return (tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        reg.write_json(self._file(), int(secs - time.time()))
        return None

    def init(self, dt):
        self.datetime(dt)
