# The box's boot and its two states (docs/SEALING.md).
#
# Sealed (every power-on, unless auto-unseal is on): the vault key is not in RAM, the device API
# answers 503 "sealed", the AP runs as SSID-locked with the sealed AP's key, and the admin page
# offers only its login. Unlocked: the operator's passphrase (or the auto-unseal key) opened the
# vault; the store, the device API and the fleet's AP (its real SSID and sealed passphrase) are
# up. Locking again drops every key from RAM.
import gc

from configurator_fw import server, timekeeper
from configurator_fw import vault as vaultmod
from configurator_fw.api import DeviceApi
from configurator_fw.app import make_app
from configurator_fw.audit import Audit
from configurator_fw.log import Log
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from shared.board import Board


class Box:
    def __init__(self, board, log=print):
        self.board = board
        self.log = log
        self.meta = Store.peek(board)
        if self.meta is None:
            raise RuntimeError("box not initialised: run the set-up (README) first")
        self.store = self.api = None
        self.audit = Audit(board, board.unix_now)
        self.ap = board.wlan("ap")
        self._ap(False)

    @property
    def sealed(self):
        return self.api is None

    def _ap(self, unlocked):
        m = self.meta
        if unlocked:
            ssid, key = m["ssid"], self.store.psk()
        else:
            ssid, key = m.get("lock_ssid", m["ssid"] + "-locked"), m["lock_key"]
        # the WiFi mode set explicitly: AP only. The AP is started before it is configured, as
        # esp_wifi_set_config refuses an interface outside the driver's mode (which a stopped
        # driver keeps from its last use); a running softAP restarts with the new settings and
        # drops its stations. At power-on it runs the driver's default for that moment, before
        # any socket listens.
        sta = self.board.wlan("sta")
        if sta.active():
            sta.active(False)
        self.ap.active(True)
        self.ap.config(ssid=ssid, key=key, authmode=3, max_clients=m["max_clients"])

    def clock_trusted(self):
        return bool(self.api and self.api.clock_ok)

    def unseal(self, key, browser_time=None, confirmed=False):
        """Open the store with the vault ``key``; the clock is trusted from a DS3231 or a set
        before the last reset, else set from ``browser_time`` (the operator's browser; one far
        ahead of the box's last time raises timekeeper.FarAhead, the box still sealed, unless
        ``confirmed``)."""
        store = Store(self.board, Vault(key))  # Tampered if box.json fails its MAC
        fixed = store.reconcile()
        if fixed:
            self.log("cfgbox: repaired %d device records after an interrupted change" % fixed)
        floor = store.floor()  # every device record: read once
        trusted, why = timekeeper.at_boot(self.board, floor)
        if not trusted and browser_time is not None:
            why = timekeeper.operator_set(self.board, store, browser_time, floor, confirmed)
            trusted = True
            self.audit.add("clock-set", "from the browser at unlock: " + why)
        self.log("cfgbox: " + (why if trusted else
                               why + "; until then every auth answers 503 clock"))
        self.store = store
        self.api = DeviceApi(store, clock_ok=trusted, log=self.log, audit=self.audit.add)
        self.meta = store.meta
        self._ap(True)
        self.log("cfgbox: unlocked; serving %s" % self.meta["ssid"])

    def seal(self):
        """Forget every key (the store, the device API, sessions elsewhere) and seal."""
        self.store = self.api = None
        gc.collect()
        self._ap(False)
        self.log("cfgbox: sealed")

    def set_clock(self, unix, confirmed=False):
        why = timekeeper.operator_set(self.board, self.store, unix, confirmed=confirmed)
        self.api.clock_ok = True
        return why


def start(board, log=print):
    """The box at power-on: sealed, or unlocked by its auto-unseal key."""
    box = Box(board, log)
    key = vaultmod.auto_key(board)
    if key is not None:
        box.unseal(key)
        box.audit.add("unlocked", "auto-unseal at power-on")
    else:
        log("cfgbox: sealed: unlock on the admin page, http://%s:%d/admin"
            % (box.ap.ifconfig()[0], box.meta["port"]))
    return box


log = Log()
# Collect after every 16 KB allocated, not only when the heap is full. Without it a request's
# garbage fills the first heap area and then the area the port grew from the IDF heap, and
# what a request keeps (an audit entry, a lockout count, an enrolled id) lands wherever that
# front of garbage stands: a few hundred small objects end up spread over all 110 KB, and the
# largest free block falls to ~2-4 KB although 50 KB are free (a 503 "memory busy" for an
# 8 KB body). Collecting early keeps the front, and what is kept, low; the top stays one block.
GC_EVERY = 16 * 1024


def run(board=None):
    board = board or Board()
    gc.threshold(GC_EVERY)  # before the store loads: its boot is the most crowded heap
    box = start(board, log)
    app = make_app(box, board.unix_now, log)
    host = box.ap.ifconfig()[0]
    print("cfgbox: %s on %s:%d" % ("sealed" if box.sealed else "serving " + box.meta["ssid"],
                                   host, box.meta["port"]))
    server.run(app, host, box.meta["port"], log)
