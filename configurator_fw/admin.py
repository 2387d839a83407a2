# Operator functions on the box, for `mpremote exec` until the admin web page arrives.
import json

from configurator_fw import timekeeper
from configurator_fw.store import Store, StoreError
from configurator_fw.vault import Vault
from shared import otpauth, protocol
from shared.board import Board


def _store(board=None):
    board = board or Board()
    return Store(board, Vault.from_nvs(board))


def setup(box_id, ssid, psk, max_clients=10, port=80, board=None):
    """Initialise the box: identity, AP SSID and WPA2 passphrase, a new fleet master key."""
    s = _store(board)
    if s.ready:
        raise RuntimeError("box already initialised")
    s.init(box_id, ssid, psk, max_clients, port)
    print("box %s ready: AP %s" % (box_id, ssid))


def set_time(unix, board=None):
    """Set the box's clock to ``unix`` seconds, UTC, e.g. ``admin.set_time($(date -u +%s))``.

    The box trusts its clock only after this (or a valid DS3231) since its last power-on; the
    time survives a reset (`mpremote reset`), not a power cut. `mpremote rtc --set` is no
    substitute: it sets the board to the PC's local time and leaves the box untrusting.
    """
    board = board or Board()
    s = _store(board)
    print(timekeeper.set_time(board, unix, s.floor() if s.ready else 0))
    if s.ready:
        s.set_floor(unix)


def enroll(dev, host=None, port=None, board=None):
    """Enrol ``dev``; prints the JSON of its bootstrap NVS entries (shown once: keep it safe)."""
    s = _store(board)
    b = s.enroll(dev)
    boot = {"dev": dev, "dk": b["dk"].hex(), "totp": b["totp"].hex(), "ssid": s.meta["ssid"],
            "psk": s.psk(), "box": s.meta["box"]}
    if host:
        boot["host"] = host
    if port or s.meta["port"] != 80:
        boot["port"] = port or s.meta["port"]
    print(json.dumps(boot))
    print(otpauth.build_uri(b["totp"], dev, s.meta["box"]))
    return boot


def revoke(dev, board=None):
    """Revoke ``dev`` (a stolen or retired device): its second factor is erased and the box
    answers it like an id it never knew. Enrol it again to bring it back, with new secrets."""
    _store(board).revoke(dev)
    print("revoked %s" % dev)


def move_on(board=None):
    """After restoring the box from an older backup, when devices refuse its configs as older
    than theirs ("older config refused"): re-issue the config at a newer version."""
    print("configs now at version %d" % _store(board).move_on())


def _parse(text, what):
    # a text over the cap cannot make a config within it: refused before it is parsed
    if len(text) > protocol.MAX_CONFIG:
        raise StoreError("%s: %d bytes of JSON; a config's cap is %d"
                         % (what, len(text), protocol.MAX_CONFIG))
    try:
        return json.loads(text)
    except ValueError:
        raise StoreError("%s: not valid JSON" % what) from None


def set_defaults(text, board=None):
    """Set the fleet-wide defaults from a JSON text; every device's version moves on."""
    _store(board).set_defaults(_parse(text, "defaults"))


def set_overrides(dev, text, board=None):
    """Set ``dev``'s overrides from a JSON text ("{}" clears them)."""
    _store(board).set_overrides(dev, _parse(text, "overrides of " + dev))


def device_rows(board=None):
    """Each enrolled device's state, one dict at a time (200 at once would not fit the heap)."""
    s = _store(board)
    drev = s.verified_defaults_rev()
    for dev, r in s.devices():
        yield {"dev": dev, "state": r["state"], "ver": max(drev, r["orev"]), "ack": r["ack"],
               "seen": r["seen"], "ahead": r.get("ahead", 0), "st": r["st"]}


def devices(board=None):
    """Print one JSON line per enrolled device."""
    for row in device_rows(board):
        print(json.dumps(row))
