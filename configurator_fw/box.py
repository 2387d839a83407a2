# The box's boot: store, vault, access point, then the web server (hardware through the seam).
from configurator_fw.api import DeviceApi
from configurator_fw.app import make_app
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from shared.board import Board

EARLIEST = 1735689600  # 2025-01-01: a clock before this was never set (PROTOCOL.md s.4)


def start(board):
    """Open the store and bring up the AP; returns (store, api, host) or raises if unset."""
    store = Store(board, Vault.from_nvs(board))
    if not store.ready:
        raise RuntimeError("box not initialised: run the set-up (README) first")
    m = store.meta
    ap = board.wlan("ap")
    ap.config(ssid=m["ssid"], key=store.psk(), authmode=3, max_clients=m["max_clients"])
    ap.active(True)
    now = board.unix_now()
    if now < m["floor"]:
        board.set_unix_time(m["floor"])  # never run backwards across power cycles
    api = DeviceApi(store, clock_ok=board.unix_now() >= EARLIEST)
    return store, api, ap.ifconfig()[0]


def run(board=None):
    board = board or Board()
    store, api, host = start(board)
    app = make_app(api, board.unix_now)
    print("cfgbox: serving %s on %s:%d" % (store.meta["ssid"], host, store.meta["port"]))
    app.run(host=host, port=store.meta["port"])
