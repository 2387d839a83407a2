# The box's boot: store, vault, access point, then the web server (hardware through the seam).
from configurator_fw import timekeeper
from configurator_fw.api import DeviceApi
from configurator_fw import server
from configurator_fw.app import make_app
from configurator_fw.log import Log
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from shared.board import Board


def start(board):
    """Open the store and bring up the AP; returns (store, api, host) or raises if unset."""
    store = Store(board, Vault.from_nvs(board))
    if not store.ready:
        raise RuntimeError("box not initialised: run the set-up (README) first")
    fixed = store.reconcile()
    if fixed:
        print("cfgbox: repaired %d device records after an interrupted change" % fixed)
    m = store.meta
    ap = board.wlan("ap")
    ap.config(ssid=m["ssid"], key=store.psk(), authmode=3, max_clients=m["max_clients"])
    ap.active(True)
    trusted, why = timekeeper.at_boot(board, store.floor())
    print("cfgbox: clock", why if trusted else why + "; until then every auth answers 503 clock")
    api = DeviceApi(store, clock_ok=trusted, log=log)
    return store, api, ap.ifconfig()[0]


log = Log()


def run(board=None):
    board = board or Board()
    store, api, host = start(board)
    app = make_app(api, board.unix_now, log)
    print("cfgbox: serving %s on %s:%d" % (store.meta["ssid"], host, store.meta["port"]))
    server.run(app, host, store.meta["port"], log)
