# The box's persistent store: fleet secrets, enrolled devices, config defaults and overrides.
#
# One small file per device (the record) and one per device's overrides, so serving a device never
# loads the others; 200+ devices fit the ESP32 heap. Every file is written atomically and every
# secret (master key, AP passphrase, TOTP secrets, config contents) goes through the Vault.
#
# Config versions: box.json holds a revision counter ``rev`` that every change bumps (persisted
# first). The defaults file and each overrides file carry the revision they were written at, as a
# 4-byte header bound into the seal, so content and version change together in one atomic write
# and a power loss can never pair new content with an old version. A device's version is the
# larger of its two files' revisions.
import json
import os

from shared import config, protocol

_DIR = "store"
MAX_DEVICES = 500
_FLOOR_EVERY = 600  # seconds between writes of the time floor (PROTOCOL.md s.4)
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


class StoreError(ValueError):
    """An operator-side request the store refuses; the message says what to do."""


def valid_id(dev):
    return isinstance(dev, str) and 0 < len(dev) <= 32 and all(c in _ID_CHARS for c in dev)


def merge(target, patch):
    """``patch`` applied to ``target`` as a JSON Merge Patch (RFC 7386).

    Objects merge key by key, ``None`` (JSON null) deletes a key, anything else replaces.
    Neither argument is modified. A device's config is ``merge(defaults, overrides)``.
    """
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


class Store:
    def __init__(self, board, vault):
        self.b = board
        self.v = vault
        self.meta = None
        try:
            self.meta = json.loads(board.read(_DIR + "/box.json"))
        except OSError:
            pass  # not initialised yet: init() makes it

    def refresh(self):
        """Re-read box.json: another writer (the operator's tools) may have changed revisions."""
        self.meta = json.loads(self.b.read(_DIR + "/box.json"))

    # -- files
    def _write(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        self.b.write_atomic(_DIR + "/" + name, data)

    def _secret(self, name, label):
        """Open a vault-sealed file; returns a bytearray (no extra copy of a large config)."""
        return self.v.open(self.b.read(_DIR + "/" + name), label)

    def _save_meta(self):
        self._write("box.json", json.dumps(self.meta))

    @property
    def ready(self):
        return self.meta is not None

    def init(self, box_id, ssid, psk, max_clients=10, port=80, master=None):
        """First-time set-up of the box: identity, AP settings, fresh fleet master key."""
        if not 8 <= len(psk) <= 63:
            raise StoreError("the AP passphrase must be 8 to 63 characters")
        if not 1 <= max_clients <= 10:
            raise StoreError("max_clients must be 1 to 10 (the softAP's limit)")
        for d in (_DIR, _DIR + "/d", _DIR + "/o"):
            try:
                os.mkdir(self.b.path(d))
            except OSError:
                pass  # exists
        self._write("mk.bin", self.v.seal(master or os.urandom(32), "mk"))
        self._write("psk.bin", self.v.seal(psk.encode(), "psk"))
        self.meta = {"box": box_id, "ssid": ssid, "max_clients": max_clients, "port": port,
                     "rev": 1, "floor": 0}
        self._save_meta()
        self._put_cfg("defaults.bin", "defaults", b"{}", 1)

    def master_key(self):
        return bytes(self._secret("mk.bin", "mk"))

    def psk(self):
        return self._secret("psk.bin", "psk").decode()

    def bump(self):
        self.meta["rev"] += 1
        self._save_meta()
        return self.meta["rev"]

    def raise_floor(self, now, force=False):
        """Persist ``now`` as the time floor when it is 10 minutes past the stored one (or
        ``force``): one write per 10 minutes at most, never one per exchange."""
        if now > self.meta["floor"] and (force or now - self.meta["floor"] >= _FLOOR_EVERY):
            self.meta["floor"] = now
            self._save_meta()

    # -- devices
    def device(self, dev):
        """The device's record (dict) or None. Holds no plaintext secret."""
        if not valid_id(dev):
            return None
        try:
            return json.loads(self.b.read(_DIR + "/d/" + dev + ".json"))
        except OSError:
            return None

    def save_device(self, dev, rec):
        self._write("d/" + dev + ".json", json.dumps(rec))

    def device_ids(self):
        return sorted(n[:-5] for n in os.listdir(self.b.path(_DIR + "/d")) if n.endswith(".json"))

    def enroll(self, dev):
        """Enrol ``dev``: returns its bootstrap secrets (device key, TOTP secret) once."""
        if not valid_id(dev):
            raise StoreError("device id: 1-32 of A-Z a-z 0-9 - _")
        if self.device(dev) is not None:
            raise StoreError("device %s is already enrolled" % dev)
        if len(self.device_ids()) >= MAX_DEVICES:
            raise StoreError("the box holds at most %d devices" % MAX_DEVICES)
        totp = os.urandom(20)
        rec = {"totp": self.v.seal(totp, "totp:" + dev).hex(), "state": "enrolled",
               "seen": 0, "ack": 0, "fails": 0, "lock": 0, "ctr": -1, "st": None}
        self.save_device(dev, rec)
        return {"dev": dev, "dk": protocol.device_key(self.master_key(), dev), "totp": totp}

    def totp_secret(self, dev, rec):
        return bytes(self.v.open(bytes.fromhex(rec["totp"]), "totp:" + dev))

    # -- configuration
    def _put_cfg(self, name, label, text, rev):
        head = rev.to_bytes(4, "big")
        self.b.write_atomic(_DIR + "/" + name, head,
                            self.v.seal(text, "%s@%d" % (label, rev)))

    def _get_cfg(self, name, label):
        """(revision, parsed JSON) of a config file; (0, {}) if there is none."""
        try:
            data = self.b.read(_DIR + "/" + name)
        except OSError:
            return 0, {}
        rev = int.from_bytes(data[:4], "big")
        return rev, json.loads(self.v.open(memoryview(data)[4:], "%s@%d" % (label, rev)))

    def _rev(self, name):
        """The revision a config file was written at, without opening it (0 if none)."""
        try:
            with open(self.b.path(_DIR + "/" + name), "rb") as f:
                return int.from_bytes(f.read(4), "big")
        except OSError:
            return 0

    def version(self, dev):
        """The version of ``dev``'s config: cheap, reads two 4-byte headers."""
        return max(self._rev("defaults.bin"), self._rev("o/" + dev + ".bin"))

    def defaults(self):
        return self._get_cfg("defaults.bin", "defaults")[1]

    def overrides(self, dev):
        return self._get_cfg("o/" + dev + ".bin", "ov:" + dev)[1]

    def config(self, dev):
        """(version, config JSON bytes) of an enrolled device."""
        drev, d = self._get_cfg("defaults.bin", "defaults")
        orev, o = self._get_cfg("o/" + dev + ".bin", "ov:" + dev)
        d = merge(d, o)
        del o
        return max(drev, orev), json.dumps(d).encode()

    def _check(self, dev, defaults, overrides):
        """Refuse a change that would give ``dev`` a config it cannot use or hold."""
        cfg = merge(defaults, overrides)
        try:
            config.check(cfg)
        except config.ConfigError as e:
            raise StoreError("config of %s: %s" % (dev, e)) from None
        n = len(json.dumps(cfg))
        if n > protocol.MAX_CONFIG:
            raise StoreError("config of %s would be %d bytes; the cap is %d"
                             % (dev, n, protocol.MAX_CONFIG))

    def set_defaults(self, defaults):
        """Replace the fleet-wide defaults; every device's version moves on."""
        if not isinstance(defaults, dict):
            raise StoreError("defaults must be a JSON object")
        for dev in self.device_ids():
            self._check(dev, defaults, self.overrides(dev))
        self._check("a device without overrides", defaults, {})
        self._put_cfg("defaults.bin", "defaults", json.dumps(defaults).encode(), self.bump())

    def set_overrides(self, dev, overrides):
        """Replace ``dev``'s overrides ({} clears them); that device's version moves on."""
        if self.device(dev) is None:
            raise StoreError("no device %s: enrol it first" % dev)
        if not isinstance(overrides, dict):
            raise StoreError("overrides must be a JSON object")
        self._check(dev, self.defaults(), overrides)
        self._put_cfg("o/" + dev + ".bin", "ov:" + dev, json.dumps(overrides).encode(),
                      self.bump())
