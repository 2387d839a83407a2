# Host emulation — never copied to a board. State the emulated boards share (the world clock, which
# APs exist and who is joined, each device's NVS, RTC and flash image) as small files under
# $EMU_DIR (a test's temp dir), guarded by a mkdir lock. Frozen into the test interpreter.
import json
import os

import utime  # the interpreter's own clock, only to back off on the lock

# Where the host's filesystem is mounted: '' until emu_boot puts the board's flash at '/', then
# '/_host' (the host stays reachable for the emulation, never for the firmware's relative paths).
HOST = ""

AP_NET = "127.0.4"  # a board's softAP network, standing for 192.168.4.x
AP_IP = AP_NET + ".1"  # stands for 192.168.4.1
NETMASK = "255.255.255.0"


def root():
    d = os.getenv("EMU_DIR")
    if not d:
        raise OSError("EMU_DIR is not set: the emulation runs only under the test harness")
    return HOST + d


def device():
    """The emulated device this process is (EMU_DEVICE), 'box' by default."""
    return os.getenv("EMU_DEVICE") or "box"


def _mkdirs(path):
    cur = ""
    for part in path.split("/"):
        if not part:
            continue
        cur = cur + "/" + part if cur or path.startswith("/") else part
        try:
            os.mkdir(cur)
        except OSError:
            pass  # exists


def path(*parts):
    p = root()
    for x in parts:
        p += "/" + x
    return p


def ensure_dir(*parts):
    p = path(*parts)
    _mkdirs(p)
    return p


class Lock:
    """Exclusive lock across processes: mkdir is atomic. A board whose power is cut (its process
    killed) while it holds the lock leaves it behind: a lock older than STALE_S host seconds
    (what it guards takes milliseconds) is broken."""

    STALE_S = 5

    def __enter__(self):
        p = path("lock")
        for i in range(10000):
            try:
                os.mkdir(p)
                return self
            except OSError:
                if i % 500 == 499 and _stale(p, self.STALE_S):
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass
                    continue
                utime.sleep_ms(1)
        raise OSError("emulation registry lock stuck: " + p)

    def __exit__(self, *exc):
        os.rmdir(path("lock"))


def _stale(p, limit):
    try:
        return utime.time() - os.stat(p)[8] > limit  # host seconds since the lock was made
    except OSError:
        return False


def read_json(p, default=None):
    try:
        with open(p) as f:
            return json.load(f)
    except OSError:
        return default


def write_json(p, obj):
    with open(p + ".tmp", "w") as f:
        json.dump(obj, f)
    os.rename(p + ".tmp", p)


def listdir(p):
    try:
        return os.listdir(p)
    except OSError:
        return []


def remove(p):
    try:
        os.remove(p)
    except OSError:
        pass  # already gone
