# Operator functions on the box over `mpremote exec` (the admin page and tools/fleet do the same
# with less typing). A sealed box opens for a call with ``passphrase``, or by itself when
# auto-unseal is on.
import json

from configurator_fw import timekeeper
from configurator_fw import vault as vaultmod
from configurator_fw.store import Store, StoreError
from configurator_fw.vault import Vault
from shared import otpauth, passphrase as passphrases, protocol
from shared.board import Board


def _store(board=None, passphrase=None):
    board = board or Board()
    if passphrase is not None:
        key = vaultmod.unwrap(board, passphrase)
    else:
        key = vaultmod.auto_key(board)
        if key is None:
            raise RuntimeError("the box is sealed: pass passphrase=... (or use the admin page)")
    return Store(board, Vault(key))


def setup(box_id, ssid, psk, max_clients=8, port=80, passphrase=None, auto_unseal=False,
          lock_key=None, board=None, iterations=vaultmod.ITERATIONS):
    """Initialise the box: identity, AP SSID and WPA2 passphrase, a new fleet master key, all
    sealed under the operator's ``passphrase`` (checked for strength)."""
    board = board or Board()
    if Store.peek(board) is not None:
        raise RuntimeError("box already initialised")
    passphrases.check(passphrase)
    key = board.random(32)
    board.mkdir("store")
    vaultmod.wrap(board, key, passphrase, iterations)
    s = Store(board, Vault(key))
    s.init(box_id, ssid, psk, max_clients, port, lock_key=lock_key)
    vaultmod.set_auto(board, key if auto_unseal else None)
    print("box %s ready: AP %s (sealed: %s)" % (box_id, ssid, s.meta["lock_ssid"]))


def set_time(unix, board=None, passphrase=None, confirm=False):
    """Set the box's clock to ``unix`` seconds, UTC, e.g. ``admin.set_time($(date -u +%s))``.

    The box trusts its clock only after this (or a valid DS3231) since its last power-on; the
    time survives a reset (`mpremote reset`), not a power cut. `mpremote rtc --set` is no
    substitute: it sets the board to the PC's local time and leaves the box untrusting. A time
    over 400 days past the last one the box knew needs ``confirm=True``.
    """
    board = board or Board()
    print(timekeeper.operator_set(board, _store(board, passphrase), unix, confirmed=confirm))


def enroll(dev, host=None, port=None, board=None, passphrase=None):
    """Enrol ``dev``; prints the JSON of its bootstrap NVS entries (shown once: keep it safe)."""
    s = _store(board, passphrase)
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


def revoke(dev, board=None, passphrase=None):
    """Revoke ``dev`` (a stolen or retired device): its second factor is erased and the box
    answers it like an id it never knew. Enrol it again to bring it back, with new secrets."""
    _store(board, passphrase).revoke(dev)
    print("revoked %s" % dev)


def accept_restore(board=None, passphrase=None):
    """After putting the box's flash back from a backup on purpose: the box refuses every device
    while its store is older than the revision its NVS recorded (docs/STORE.md); this takes the
    restored store as current. Revocations made since that backup must be made again."""
    s = _store(board, passphrase)
    was = s.rolled_back
    s.accept_restore()
    print("restore accepted: store state %d (the box had written %d)" % was if was
          else "nothing to accept: the store is the box's latest")


def move_on(board=None, passphrase=None):
    """After restoring the box from an older backup, when devices refuse its configs as older
    than theirs ("older config refused"): re-issue the config at a newer version."""
    print("configs now at version %d" % _store(board, passphrase).move_on())


def _parse(text, what):
    # a text over the cap cannot make a config within it: refused before it is parsed
    if len(text) > protocol.MAX_CONFIG:
        raise StoreError("%s: %d bytes of JSON; a config's cap is %d"
                         % (what, len(text), protocol.MAX_CONFIG))
    try:
        return json.loads(text)
    except ValueError:
        raise StoreError("%s: not valid JSON" % what) from None


def set_defaults(text, board=None, passphrase=None):
    """Set the fleet-wide defaults from a JSON text; every device's version moves on."""
    _store(board, passphrase).set_defaults(_parse(text, "defaults"))


def set_overrides(dev, text, board=None, passphrase=None):
    """Set ``dev``'s overrides from a JSON text ("{}" clears them)."""
    _store(board, passphrase).set_overrides(dev, _parse(text, "overrides of " + dev))


def device_rows(board=None, passphrase=None):
    """Each enrolled device's state, one dict at a time (200 at once would not fit the heap)."""
    s = _store(board, passphrase)
    drev = s.verified_defaults_rev()
    for dev, r in s.devices():
        yield {"dev": dev, "state": r["state"], "ver": max(drev, r["orev"]), "ack": r["ack"],
               "seen": r["seen"], "ahead": r.get("ahead", 0), "st": r["st"]}


def devices(board=None, passphrase=None):
    """Print one JSON line per enrolled device."""
    for row in device_rows(board, passphrase):
        print(json.dumps(row))
