# The client's boot flow: check with the box when due (or when the application recorded an
# error), bounded retries with back-off and jitter, never a reboot loop. The application reads
# its config through client_fw.appconfig; load_config() gives a small config as a dict.
import os
import sys
import time

from client_fw import bootstrap
from client_fw import provision as p
from client_fw.storage import Storage
from shared.sealedbox import SealError

RETRY = (p.NO_BOX, p.AP_FULL, p.BUSY, p.NET, p.LOCKED)
MAX_WAIT_S = 120  # longest single back-off; a longer lockout is left for the next check


class Device:
    def __init__(self, board, interval=3600, sleep_ms=time.sleep_ms):
        self.b = board
        self.interval = interval
        self.sleep_ms = sleep_ms
        self.last = None  # status of the last attempt

    def _storage(self):
        boot = bootstrap.read(self.b)
        return Storage(self.b, boot["dev"], boot["k"])

    def _stored(self):
        """The version of the stored config, checked whole as a stream; 0 when there is none
        or it does not open."""
        try:
            return self._storage().version()
        except (bootstrap.Missing, SealError, ValueError):
            return 0

    def load_config(self):
        """The stored config as a dict, or None when there is none or it does not open. All of
        it is in RAM at once, about three times its JSON size while it is built (a 4 KB config
        takes some 12 KB): for small configs. client_fw.appconfig reads one value at a time."""
        try:
            return self._storage().load()[1]
        except (bootstrap.Missing, SealError, ValueError, MemoryError):
            return None

    def _due(self, now):
        try:
            last = self.b.nvs(p.NS).get_i32("checked")
        except OSError:
            return True
        # an error the application recorded (a refused credential) asks for a new config now
        return now - last >= self.interval or now < last or bool(bootstrap.app_error(self.b))

    def check(self, force=False, attempts=4, base_ms=1000, now=None):
        """Check with the box if forced, due, or no valid config is stored; returns a status."""
        have = self._stored()  # checked once per check, as a stream
        valid = have > 0
        t = self.b.unix_now()
        if valid and not force and not self._due(t):
            return p.UNCHANGED
        status = None
        app_error = bootstrap.app_error(self.b)  # what the application recorded, if anything
        for i in range(attempts):
            try:
                status, retry = p.provision(self.b, have, now, self.last or app_error)
            except Exception as e:  # noqa: BLE001 - the application starts whatever happens
                status, retry = "%s (%s)" % (p.ERROR, type(e).__name__), None
            self.last = None if status in (p.OK, p.UNCHANGED) else status
            if status not in RETRY or i == attempts - 1:
                break
            wait = min(retry, 86400) * 1000 if retry and retry > 0 else base_ms << i
            if wait > MAX_WAIT_S * 1000:
                break
            self.sleep_ms(wait + int.from_bytes(os.urandom(2), "big") % base_ms)  # jitter
        if status in (p.OK, p.UNCHANGED):
            self.last = None
            nvs = self.b.nvs(p.NS)
            nvs.set_i32("checked", t)
            nvs.commit()
        return status


def release():
    """Forget the provisioning code so the application gets its RAM back.

    Drops every ``client_fw`` and ``shared`` module from ``sys.modules``; the caller drops its
    own references (its Device, imported names), then the firmware's main collects. A config
    reader and a dict from ``load_config()`` stay valid. Importing ``client_fw.device`` again
    later (for a check the application asks for) loads the code afresh.
    """
    for name in [n for n in sys.modules if n.split(".")[0] in ("client_fw", "shared")]:
        del sys.modules[name]
