# The hardware seam: the only module touching network, machine, esp32, the clock and files.
#
# On a board these are the real modules. Under test the harness puts its emulations
# (host_tests/emu) on the path, so the same firmware runs unchanged. Nothing is imported
# before Board().
import os

from shared import clock


class Board:
    """The board's hardware, reached through one object handed to the firmware.

    ``root`` is the filesystem root for the firmware's files: '' means the current directory,
    which is '/' on an ESP32 (the harness starts each emulated device in a directory of its own).
    """

    def __init__(self, root=""):
        import esp32
        import machine
        import network

        self.network = network
        self.machine = machine
        self._esp32 = esp32
        self.root = root

    def wlan(self, interface):
        """The WLAN interface 'ap' (access point) or 'sta' (station)."""
        net = self.network
        return net.WLAN(net.AP_IF if interface == "ap" else net.STA_IF)

    def unique_id(self):
        """The chip's unique id (bytes): the eFuse MAC on an ESP32."""
        return self.machine.unique_id()

    def nvs(self, namespace):
        """An ``esp32.NVS`` namespace (bootstrap secrets, small counters)."""
        return self._esp32.NVS(namespace)

    def reset(self):
        self.machine.reset()

    def rtc_memory(self, data=None):
        """The RTC's user memory: kept across resets, cleared by a power-on (ESP32 port)."""
        return self.machine.RTC().memory() if data is None else self.machine.RTC().memory(data)

    def i2c(self, scl=22, sda=21):
        """The I2C bus on ``scl``/``sda`` (an optional DS3231 RTC sits there)."""
        m = self.machine
        return m.I2C(0, scl=m.Pin(scl), sda=m.Pin(sda), freq=400000)

    def unix_now(self):
        """The board clock as integer Unix seconds (see shared/clock.py)."""
        return clock.unix_now()

    def set_unix_time(self, unix_seconds):
        """Set the board clock (RTC) from Unix seconds, e.g. from the operator or an RTC module."""
        import time

        tm = time.gmtime(clock.from_unix(unix_seconds, clock.epoch_offset()))
        self.machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))

    def path(self, name):
        """Path of the firmware file ``name`` under the filesystem root."""
        if not name:
            return self.root
        return self.root + "/" + name if self.root else name

    def exists(self, name):
        try:
            os.stat(self.path(name))
            return True
        except OSError:
            return False

    def read(self, name):
        """Contents of file ``name`` as bytes; OSError if absent."""
        with open(self.path(name), "rb") as f:
            return f.read()

    def write_atomic(self, name, *parts):
        """Replace file ``name`` with ``parts`` joined, so a power loss leaves the old or the new,
        whole. Several parts are written one after the other, never concatenated in RAM; a part
        that is callable is called with the file's ``write`` to stream its bytes in."""
        tmp = self.path(name + ".tmp")
        with open(tmp, "wb") as f:
            for data in parts:
                if callable(data):
                    data(f.write)
                else:
                    f.write(data)
            f.flush()
        os.rename(tmp, self.path(name))

    def read_at(self, name, offset, n):
        """``n`` bytes of file ``name`` from ``offset`` (fewer at its end); OSError if absent."""
        with open(self.path(name), "rb") as f:
            f.seek(offset)
            return f.read(n)

    def write_at(self, name, offset, data):
        """Overwrite ``data`` at ``offset`` inside file ``name``, which keeps its size. LittleFS
        writes a file copy-on-write and commits it at close: a power loss leaves the old bytes
        or the new, whole (docs/STORE.md). A board whose filesystem does not (a host's) uses
        write_atomic instead."""
        with open(self.path(name), "r+b") as f:
            f.seek(offset)
            f.write(data)

    def write_at_copy(self, name, offset, data):
        """write_at for a filesystem that is not copy-on-write: the file rewritten atomically."""
        old = bytearray(self.read(name))
        old[offset:offset + len(data)] = data
        self.write_atomic(name, old)

    def append(self, name, data):
        """Append ``data`` to file ``name`` (LittleFS: a power cut loses at most this append,
        never what was there)."""
        with open(self.path(name), "ab") as f:
            f.write(data)

    def size(self, name):
        """Size of file ``name`` in bytes, 0 if absent."""
        try:
            return os.stat(self.path(name))[6]
        except OSError:
            return 0

    def rename(self, old, new):
        """Rename ``old`` over ``new`` (atomic on LittleFS)."""
        os.rename(self.path(old), self.path(new))

    def open_read(self, name):
        """File ``name`` opened for reading in binary (a stream); OSError if absent."""
        return open(self.path(name), "rb")

    def free_blocks(self):
        """(free blocks, block size) of the filesystem holding the firmware's files."""
        st = os.statvfs(self.path("") or "/")
        return st[3], st[0]

    def listdir(self, name):
        try:
            return os.listdir(self.path(name))
        except OSError:
            return []

    def mkdir(self, name):
        try:
            os.mkdir(self.path(name))
        except OSError:
            pass  # exists

    def random(self, n):
        """``n`` bytes for a long-term secret. On an ESP32 ``os.urandom`` is truly random only
        while the radio runs (Espressif's esp_random): if neither interface is up, the station
        is brought up for the draw (it joins nothing, no AP appears) and put down again. Both
        interfaces are then down as before, though the stopped driver keeps the station's mode
        (which is why the box starts its AP before configuring it)."""
        if self.wlan("ap").active() or self.wlan("sta").active():
            return os.urandom(n)
        sta = self.wlan("sta")
        sta.active(True)
        try:
            return os.urandom(n)
        finally:
            sta.active(False)

    def remove(self, name):
        try:
            os.remove(self.path(name))
        except OSError:
            pass
