# The box's persistent store: fleet secrets, enrolled devices, config defaults and overrides.
#
# Sized for 1,000 devices on the ESP32's 2 MiB LittleFS, where every file takes at least one
# 4 KB block: devices share 64 bucket files of each kind, chosen by a hash of the id, so the
# store takes about 200 blocks however many devices there are. d/NN.json holds what changes at
# an exchange (counters, lockout, last status: one small rewrite per auth); t/NN.json the sealed
# TOTP secrets (written at enrolment only); o/NN.json the sealed overrides with the revision they
# were written at, in one atomic write (a large one gets a file of its own, o/DEV.REV.bin). The
# state's "orev" caches that revision for the exchanges; reconcile() repairs it at boot should a
# power cut have fallen between the two writes (box.json names the device being changed). Every
# write is atomic (Board.write_atomic) and every secret goes through the Vault. An operator's
# change that would not fit the flash is refused before anything is written, leaving room for
# the exchanges' own rewrites.
#
# Configs are record streams (shared/records.py): defaults.bin is its revision (4 bytes) then the
# defaults sealed as a stream under the label "defaults@REV"; overrides are sealed the same way
# under "ov:DEV@REV". A device's version is max(defaults revision, its overrides revision); the
# box composes its config from the two streams as it sends it (compose.py).
import hashlib
import json

from configurator_fw import compose
from shared import config, protocol, records
from shared.records import RecordReader

_DIR = "store"
MAX_DEVICES = 1000
_BUCKETS = 64
_INLINE = 1024  # sealed overrides up to this size live in their bucket; larger ones in a file
_RESERVE = 16  # blocks kept free for the exchanges' rewrites and LittleFS's metadata
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


class StoreError(ValueError):
    """An operator-side request the store refuses; the message says what to do."""


class Tampered(StoreError):
    """A stored index entry fails its MAC: someone wrote to the box's flash."""


_TAMPERED = {"state": "tampered", "seen": 0, "ack": 0, "ctr": -1, "st": None, "orev": 0}


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


def _sizes(obj, depth, path_len=0):
    """(bytes of json.dumps(obj), bytes of its records) without encoding it whole."""
    if not isinstance(obj, dict):
        n = len(json.dumps(obj))
        return n, n
    if depth > 16:
        raise records.RecordError("nested deeper than 16")
    n = 2 + max(0, 2 * (len(obj) - 1))  # braces, ", " between members
    size = 0
    for k, v in obj.items():
        if not isinstance(k, str) or "\x00" in k:
            raise records.RecordError("key %r" % (k,))
        plen = path_len + len(k.encode()) + (1 if depth else 0)
        if plen > records.MAX_PATH:
            raise records.RecordError("path too long at %r" % k)
        vn, vsize = _sizes(v, depth + 1, plen)
        n += len(json.dumps(k)) + 2 + vn
        size += 5 + plen + vsize  # an object's record has no value: its members follow
    return n, size


def bucket_of(dev):
    """The bucket number of ``dev``: the low 6 bits of the first byte of SHA-256(dev)."""
    return hashlib.sha256(dev.encode()).digest()[0] % _BUCKETS


def _bucket(dev):
    return "%02d.json" % bucket_of(dev)


def _bytes_source(data):
    pos = [0]
    mv = memoryview(data)

    def read(buf):
        n = min(len(buf), len(data) - pos[0])
        buf[:n] = mv[pos[0] : pos[0] + n]
        pos[0] += n
        return n

    return read


class Store:
    def __init__(self, board, vault):
        self.b = board
        self.v = vault
        self.meta = None
        self._mk = None
        self._count = None  # enrolled devices, counted once
        self._state = None  # (name, dict) of the state bucket read last: auth reads, then writes
        self._drev = None  # the defaults' revision once verified (verified_defaults_rev)
        try:
            raw = board.read(_DIR + "/box.json")
        except OSError:
            return  # not initialised yet: init() makes it
        text, _, tag = bytes(raw).decode().rpartition("\n")
        if not vault.mac_ok("box.json", text, tag):
            raise Tampered("store/box.json fails its MAC: the box's flash was written by "
                           "something other than the box; restore the store from its backup")
        self.meta = json.loads(text)

    # -- files
    def _write(self, name, *parts):
        self.b.write_atomic(_DIR + "/" + name,
                            *(p.encode() if isinstance(p, str) else p for p in parts))

    def _read_json(self, name, default):
        try:
            return json.loads(self.b.read(_DIR + "/" + name))
        except OSError:
            return default

    def _save_meta(self):
        text = json.dumps(self.meta)
        self._write("box.json", text, "\n", self.v.mac("box.json", text))

    def _room(self, new_bytes, what):
        """Refuse, before writing, a change that would leave the flash without its reserve."""
        free, block = self.b.free_blocks()
        need = 2 * (new_bytes + block - 1) // block + 1  # the new copy beside the old, metadata
        if free - need < _RESERVE:
            raise StoreError("flash full: %s needs %d blocks of %d B, %d are free and %d are kept "
                             "for the box's own writes; remove overrides or devices first"
                             % (what, need, block, free, _RESERVE))

    @staticmethod
    def peek(board):
        """box.json as stored, unverified (None if the box is not set up): what a sealed box
        needs before its vault opens (its AP's name and the sealed AP's key, its port). Nothing
        in it is secret; Store() verifies it once the vault is open."""
        try:
            raw = bytes(board.read(_DIR + "/box.json")).decode()
            return json.loads(raw.rpartition("\n")[0])
        except (OSError, ValueError):
            return None

    @property
    def ready(self):
        return self.meta is not None

    def init(self, box_id, ssid, psk, max_clients=10, port=80, master=None, lock_key=None):
        """First-time set-up of the box: identity, AP settings, fresh fleet master key.

        While sealed the box runs its AP as SSID-locked with ``lock_key`` (kept in clear: it
        reaches the admin page's login and nothing else); the fleet's AP passphrase ``psk`` is
        sealed and used only once the box is unlocked (docs/SEALING.md)."""
        if not 8 <= len(psk) <= 63:
            raise StoreError("the AP passphrase must be 8 to 63 characters")
        if not 1 <= len(ssid.encode()) <= 25:
            raise StoreError("the AP name must be 1 to 25 bytes (-locked is added while sealed)")
        lock_key = lock_key or self.b.random(12).hex()
        if not 8 <= len(lock_key) <= 63 or lock_key == psk:
            raise StoreError("the sealed AP's key must be 8 to 63 characters, not the fleet's")
        if not 1 <= max_clients <= 10:
            raise StoreError("max_clients must be 1 to 10 (the softAP's limit)")
        for d in ("", "/d", "/t", "/o"):
            self.b.mkdir(_DIR + d)
        self._write("mk.bin", self.v.seal(master or self.b.random(32), "mk"))
        self._write("psk.bin", self.v.seal(psk.encode(), "psk"))
        self.meta = {"box": box_id, "ssid": ssid, "max_clients": max_clients, "port": port,
                     "rev": 1, "floor": 0, "lock_ssid": ssid + "-locked", "lock_key": lock_key}
        self._save_meta()
        self._put_stream("defaults.bin", "defaults", {}, 1)
        self._drev = 1

    def master_key(self):
        if self._mk is None:  # opened once: it is needed at every exchange
            self._mk = bytes(self.v.open(self.b.read(_DIR + "/mk.bin"), "mk"))
        return self._mk

    def psk(self):
        return self.v.open(self.b.read(_DIR + "/psk.bin"), "psk").decode()

    def bump(self, pending=None):
        """The next revision, persisted first; ``pending`` names a device whose overrides change
        under it, until reconcile() at the next boot has checked the change landed whole."""
        self.meta["rev"] += 1
        if pending:
            self.meta["pending"] = pending
        self._save_meta()
        return self.meta["rev"]

    def set_floor(self, unix):
        """Persist a time the clock was set to: it may never be set behind it again."""
        if unix > self.meta["floor"]:
            self.meta["floor"] = unix
            self._save_meta()

    def floor(self):
        """The earliest the clock can be now: past the last time it was set and every time a
        code was accepted (a device's last step, less the one step of skew the box allows).
        Derived from the device records the exchanges write anyway: no write of its own."""
        step = max([rec["ctr"] for _, rec in self.devices()] or [-1])
        return max(self.meta["floor"], (step - 1) * 30)

    # -- devices
    def _state_bucket(self, dev, name=None):
        name = name or "d/" + _bucket(dev)
        if self._state is None or self._state[0] != name:
            self._state = None  # a failed read leaves nothing stale behind
            self._state = (name, self._read_json(name, {}))
        return self._state

    def _open_state(self, dev, entry):
        text, tag = entry
        if not self.v.mac_ok("state:" + dev, text, tag):
            raise Tampered("the record of %s fails its MAC" % dev)
        return json.loads(text)

    def device(self, dev):
        """The device's state (dict) or None; Tampered if its record fails its MAC. Its entry in
        the bucket is its JSON text and a MAC over it under the vault (the MACed index: the
        step counter and the overrides revision decide things, so none is taken unverified)."""
        if not valid_id(dev):
            return None
        entry = self._state_bucket(dev)[1].get(dev)
        return self._open_state(dev, entry) if entry is not None else None

    def decoy_device(self, dev, bucket):
        """The work of device() for an id ``dev`` the box does not know: the same checks, state
        bucket ``bucket`` read and its first entry's MAC checked, so an unknown id costs what an
        enrolled one does. Returns None."""
        valid_id(dev)
        for dev, entry in self._state_bucket(None, "d/%02d.json" % bucket)[1].items():
            try:
                self._open_state(dev, entry)
            except Tampered:
                pass
            break
        return None

    def save_device(self, dev, rec):
        """Rewrite ``dev``'s state (its bucket: one small file). The bucket as read last is
        reused (the store is its only writer while the box runs); it changes only once written."""
        name, bucket = self._state_bucket(dev)
        new = dict(bucket)
        text = json.dumps(rec)
        new[dev] = [text, self.v.mac("state:" + dev, text)]
        self._write(name, json.dumps(new))
        self._state = (name, new)

    def devices(self):
        """Every enrolled device as (id, state), one bucket file read at a time."""
        for name in self.b.listdir(_DIR + "/d"):
            if name.endswith(".json"):
                for dev, entry in self._read_json("d/" + name, {}).items():
                    try:
                        yield dev, self._open_state(dev, entry)
                    except Tampered:  # shown to the operator as such; it cannot authenticate
                        yield dev, dict(_TAMPERED)

    def device_ids(self):
        return sorted(dev for dev, _ in self.devices())

    def enroll(self, dev):
        """Enrol ``dev``: returns its bootstrap secrets (device key, TOTP secret) once."""
        if not valid_id(dev):
            raise StoreError("device id: 1-32 of A-Z a-z 0-9 - _")
        old = self.device(dev)
        if old is not None and old["state"] != "revoked":
            raise StoreError("device %s is already enrolled" % dev)
        if self._count is None:
            self._count = sum(1 for _ in self.devices())
        if old is None and self._count >= MAX_DEVICES:
            raise StoreError("the box holds at most %d devices" % MAX_DEVICES)
        secrets = self._read_json("t/" + _bucket(dev), {})
        self._room(2 * len(json.dumps(secrets)) + 512, "enrolling " + dev)
        totp = self.b.random(20)
        secrets[dev] = self.v.seal(totp, "totp:" + dev).hex()
        self._write("t/" + _bucket(dev), json.dumps(secrets))
        del secrets
        # overrides kept from before a revoke stay the device's: its record names their revision
        orev = (self._overrides_entry(dev) or [0])[0]
        self.save_device(dev, {"state": "enrolled", "seen": 0, "ack": 0, "ctr": -1, "st": None,
                               "orev": orev})
        self._count += old is None
        return {"dev": dev, "dk": protocol.device_key(self.master_key(), dev), "totp": totp}

    def rekey(self, dev):
        """New secrets for ``dev`` (a device whose secrets may have leaked, or a replacement
        board under the same id): a new TOTP secret, so the old pair opens nothing. Its device
        key is fixed by the master key and its id (PROTOCOL.md s.1)."""
        if self.device(dev) is None:
            raise StoreError("no device %s" % dev)
        self.revoke(dev)
        return self.enroll(dev)

    def flash(self):
        """Flash use: blocks free and in all, and how many more devices fit (each adds ~0.5 KB
        to the bucket files; overrides take more)."""
        free, block = self.b.free_blocks()
        if self._count is None:
            self._count = sum(1 for _ in self.devices())
        room = max(0, free - _RESERVE) * block // 512
        return {"free": free, "block": block, "devices": self._count,
                "more": max(0, min(MAX_DEVICES - self._count, room))}

    def totp_secret(self, dev):
        box = self._read_json("t/" + _bucket(dev), {})[dev]
        return bytes(self.v.open(bytes.fromhex(box), "totp:" + dev))

    def decoy_secret(self, bucket):
        """The work of totp_secret() for an id the box does not know: read secrets bucket
        ``bucket`` and open its first entry. Returns those bytes (someone else's secret, only
        ever mixed into a decoy key) or 20 zero bytes for an empty bucket."""
        for dev, box in self._read_json("t/%02d.json" % bucket, {}).items():
            try:
                return bytes(self.v.open(bytes.fromhex(box), "totp:" + dev))
            except ValueError:
                break
        return bytes(20)

    def revoke(self, dev):
        """Revoke ``dev`` for good: its TOTP secret is erased and its state says "revoked", so
        neither factor it holds opens anything again (enrol it anew to bring it back)."""
        rec = self.device(dev)
        if rec is None:
            raise StoreError("no device %s" % dev)
        secrets = self._read_json("t/" + _bucket(dev), {})
        if secrets.pop(dev, None) is not None:
            self._write("t/" + _bucket(dev), json.dumps(secrets))
        rec["state"] = "revoked"
        self.save_device(dev, rec)

    def verified_defaults_rev(self):
        """The defaults' revision, checked: its 4-byte header is bound into the stream's seal,
        so the whole stream is read through its tag (once; the store's own writes keep it).
        Tampered if it fails."""
        if self._drev is not None:
            return self._drev
        rev, reader, sealed, f = self.open_defaults()
        try:
            buf = bytearray(256)
            while sealed.readinto(buf):
                pass
            sealed.verify()
        except ValueError:
            raise Tampered("store/defaults.bin fails its tag (revision %d)" % rev) from None
        finally:
            f.close()
        self._drev = rev
        return rev

    # -- configuration: sealed record streams
    def _seal_records(self, recs, label, rev, write):
        """Stream ``recs`` sealed under the vault with label LABEL@REV to ``write``."""
        w = self.v.writer("%s@%d" % (label, rev), write)
        for path, kind, value in recs:
            w.write(compose.header(kind, path, len(value)))
            w.write(value)
        w.close()
        return w.length

    def _put_stream(self, name, label, obj, rev, patch=False):
        recs = compose.flatten(obj, patch)
        self._write(name, rev.to_bytes(4, "big"),
                    lambda write: self._seal_records(recs, label, rev, write))

    def version(self, dev, rec=None):
        """The version of ``dev``'s config: the newer of the defaults and its overrides."""
        rec = rec or self.device(dev)
        return max(self.verified_defaults_rev(), rec["orev"] if rec else 0)

    def open_defaults(self):
        """(revision, RecordReader, SealReader, file) over the defaults as stored; the caller
        closes the file and calls the SealReader's verify() when it has read to the end."""
        f = self.b.open_read(_DIR + "/defaults.bin")
        rev = int.from_bytes(f.read(4), "big")
        sealed = self.v.reader("defaults@%d" % rev, f.readinto)
        return rev, RecordReader(sealed.readinto), sealed, f

    def _overrides_entry(self, dev):
        """[revision, hex of the sealed overrides or the name of their file] or None."""
        return self._read_json("o/" + _bucket(dev), {}).get(dev)

    def open_overrides(self, dev):
        """(revision, RecordReader, SealReader or None, file or None) over ``dev``'s overrides
        (none: an empty stream); a large one is read from its file as it goes."""
        entry = self._overrides_entry(dev)
        if entry is None:
            return 0, RecordReader(_bytes_source(b"")), None, None
        rev, box = entry
        f = None
        if box.endswith(".bin"):
            f = self.b.open_read(_DIR + "/o/" + box)
            src = f.readinto
        else:
            src = _bytes_source(bytes.fromhex(box))
        sealed = self.v.reader("ov:%s@%d" % (dev, rev), src)
        return rev, RecordReader(sealed.readinto), sealed, f

    def reconcile(self):
        """At boot, after a change of overrides that a power cut interrupted: the device's cached
        overrides revision as its bucket says, and no file of it left over. box.json names that
        device from the start of the change (bump) to here. Returns how many were repaired."""
        dev = self.meta.get("pending")
        if not dev:
            return 0
        entry = self._overrides_entry(dev)
        rec = self.device(dev)
        fixed = 0
        if rec is not None and rec["orev"] != (entry[0] if entry else 0):
            rec["orev"] = entry[0] if entry else 0
            self.save_device(dev, rec)
            fixed = 1
        keep = entry[1] if entry else None
        for name in self.b.listdir(_DIR + "/o"):
            if name.startswith(dev + ".") and name.endswith(".bin") and name != keep:
                self.b.remove(_DIR + "/o/" + name)
        del self.meta["pending"]
        self._save_meta()
        return fixed

    def defaults(self):
        _, reader, sealed, f = self.open_defaults()
        try:
            return records.unflatten(reader)
        finally:
            sealed.verify()
            f.close()

    def overrides(self, dev):
        _, reader, sealed, f = self.open_overrides(dev)
        out = {}
        while True:  # a patch holds DELETEs: rebuild it as the JSON object it came from
            r = reader.next()
            if r is None:
                break
            kind, path, _ = r
            value = {} if kind == records.OBJECT else None
            if kind == records.VALUE:
                value = json.loads(reader.value())
            records._put(out, path, value)
        if sealed:
            sealed.verify()
        if f:
            f.close()
        return out

    def config(self, dev):
        """(version, config JSON bytes) of an enrolled device, composed whole: for the
        operator's tools and tests. Devices get theirs streamed (api.py)."""
        rev, d_reader, d_sealed, f = self.open_defaults()
        orev, o_reader, o_sealed, o_file = self.open_overrides(dev)
        parts = []
        for _ in compose.compose(d_reader, o_reader, lambda b: parts.append(bytes(b))):
            pass
        d_sealed.verify()
        f.close()
        if o_sealed:
            o_sealed.verify()
        if o_file:
            o_file.close()
        cfg = records.unflatten(RecordReader(_bytes_source(b"".join(parts))))
        return max(rev, orev), json.dumps(cfg).encode()

    def _check(self, dev, defaults, overrides):
        """Refuse a change that would give ``dev`` a config it cannot use or hold; returns the
        size of its record stream. Measured a value at a time: the merged config shares its
        values with the inputs and is never encoded whole."""
        cfg = merge(defaults, overrides)
        try:
            config.check(cfg)
            n, size = _sizes(cfg, 0)
        except (config.ConfigError, records.RecordError) as e:
            raise StoreError("config of %s: %s" % (dev, e)) from None
        if n > protocol.MAX_CONFIG:
            raise StoreError("config of %s would be %d bytes; the cap is %d"
                             % (dev, n, protocol.MAX_CONFIG))
        if size > protocol.MAX_RECORDS:
            raise StoreError("config of %s would be %d bytes as records (deep paths repeat); "
                             "the cap is %d" % (dev, size, protocol.MAX_RECORDS))
        return size

    def set_defaults(self, defaults):
        """Replace the fleet-wide defaults; every device's version moves on."""
        if not isinstance(defaults, dict):
            raise StoreError("defaults must be a JSON object")
        size = self._check("a device without overrides", defaults, {})
        for dev in self.device_ids():
            self._check(dev, defaults, self.overrides(dev))
        self._room(size + 64, "the defaults")
        rev = self.bump()
        self._drev = None
        self._put_stream("defaults.bin", "defaults", defaults, rev)
        self._drev = rev

    def move_on(self):
        """After restoring the box from an older backup: devices hold versions newer than the
        box's and refuse its configs (no rollback). Re-issue the defaults, unchanged, at a
        revision above every version a device acknowledged or reported; returns it."""
        top = 0
        for _, rec in self.devices():
            top = max(top, rec["ack"], rec.get("ahead", 0))
        if top >= self.meta["rev"]:
            self.meta["rev"] = top
        self.set_defaults(self.defaults())
        return self._drev

    def set_overrides(self, dev, overrides):
        """Replace ``dev``'s overrides ({} clears them); that device's version moves on."""
        rec = self.device(dev)
        if rec is None:
            raise StoreError("no device %s: enrol it first" % dev)
        if not isinstance(overrides, dict):
            raise StoreError("overrides must be a JSON object")
        self._check(dev, self.defaults(), overrides)
        try:
            recs = compose.flatten(overrides, True)
        except records.RecordError as e:
            raise StoreError("overrides of %s: %s" % (dev, e)) from None
        bucket_name = "o/" + _bucket(dev)
        bucket = self._read_json(bucket_name, {})
        n = sum(5 + len(p) + len(v) for p, _, v in recs)
        size = 1 + 16 + (n // 16 + 1) * 16 + 32  # sealed: version, IV, padded records, tag
        self._room(size * 2 + len(json.dumps(bucket)), "the overrides of " + dev)
        if self.meta.get("pending"):
            self.reconcile()
        rev = self.bump(dev)
        label = "ov:" + dev
        old = bucket.get(dev)
        if size > _INLINE:  # a file of its own, sealed straight into it
            fname = "%s.%d.bin" % (dev, rev)
            self._write("o/" + fname, lambda write: self._seal_records(recs, label, rev, write))
            bucket[dev] = [rev, fname]
        else:  # small: its bytes in the bucket
            sealed = []
            self._seal_records(recs, label, rev, lambda b: sealed.append(bytes(b)))
            bucket[dev] = [rev, b"".join(sealed).hex()]
        # content and revision change together, in this one atomic write
        self._write(bucket_name, json.dumps(bucket))
        if old and old[1].endswith(".bin"):
            self.b.remove(_DIR + "/o/" + old[1])
        rec["orev"] = rev
        self.save_device(dev, rec)
        del self.meta["pending"]  # landed whole
        self._save_meta()
