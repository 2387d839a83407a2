# The box's persistent store: box settings, fleet secrets, enrolled devices, config defaults and
# overrides. This module is the store's face (what the API, the admin page and the tools call)
# and box.json; each kind of data lives in a module of its own:
#   store_devices.py    one fixed-size MACed record per device, updated in place (the exchanges)
#   store_secrets.py    the devices' sealed TOTP secrets, one fixed-size entry per device
#   store_status.py     the last status each device reported that the operator must see
#   store_overrides.py  each device's sealed overrides, a table and streams per group file
# and defaults.bin holds the fleet's defaults. docs/STORE.md says why an exchange costs the same
# flash operations with 10 devices as with 1,000, and counts them.
#
# Sized for 1,000 devices on the ESP32's 2 MiB LittleFS, where every file takes at least one
# 4 KB block: devices share group files of 16 (a device's slot, given at enrolment, names its
# group), so the store takes about 4 blocks per 16 devices. Every write is atomic
# (Board.write_atomic, or Board.write_at, which LittleFS commits whole at close) and every
# secret goes through the Vault. An operator's change that would not fit the flash is refused
# before anything is written, leaving room for the exchanges' own rewrites.
#
# Configs are record streams (shared/records.py): defaults.bin is its revision (4 bytes) then the
# defaults sealed as a stream under the label "defaults@REV"; overrides are sealed the same way
# under "ov:DEV@REV". A device's version is max(defaults revision, its overrides revision); the
# box composes its config from the two streams as it sends it (compose.py). A device's record
# caches its overrides' revision ("orev"); reconcile() repairs it at boot should a power cut
# have fallen between the two writes (box.json names the device being changed).
import json

from configurator_fw import compose
from configurator_fw.store_devices import (F_TAMPERED, GROUP, RECORD, Conflict, Devices, NotFound,
                                           Refused,
                                           StoreError, Tampered, err_hash, field_at, id_hash)
from configurator_fw.store_overrides import FILE, Overrides, own_file
from configurator_fw.store_secrets import Secrets
from configurator_fw.store_state import nvs_get, nvs_set
from configurator_fw.store_status import Statuses
from shared import config, protocol, records
from shared.records import RecordReader

_DIR = "store"
MAX_DEVICES = 1000
_RESERVE = 16  # blocks kept free for the exchanges' rewrites and LittleFS's metadata
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


_TAMPERED = {"state": "tampered", "seen": 0, "ack": 0, "ctr": -1, "st": None, "orev": 0,
             "ahead": 0, "ip": 0, "eh": 0}


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


def json_sizes(obj, depth, path_len=0):
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
        vn, vsize = json_sizes(v, depth + 1, plen)
        n += len(json.dumps(k)) + 2 + vn
        size += 5 + plen + vsize  # an object's record has no value: its members follow
    return n, size




def _bytes_source(data):
    pos = [0]
    mv = memoryview(data)

    def read(buf):
        n = min(len(buf), len(data) - pos[0])
        buf[:n] = mv[pos[0] : pos[0] + n]
        pos[0] += n
        return n

    return read


class _Files:
    """The board's file functions under store/ (what the store's modules are handed)."""

    def __init__(self, board):
        self.b = board

    def read(self, name):
        return self.b.read(_DIR + "/" + name)

    def read_at(self, name, offset, n):
        return self.b.read_at(_DIR + "/" + name, offset, n)

    def write(self, name, *parts):
        self.b.write_atomic(_DIR + "/" + name,
                            *(p.encode() if isinstance(p, str) else p for p in parts))

    write_atomic = write

    def write_at(self, name, offset, data):
        self.b.write_at(_DIR + "/" + name, offset, data)

    def exists(self, name):
        return self.b.exists(_DIR + "/" + name)

    def make(self, name, size):
        """A new file of ``size`` zero bytes, written 256 at a time (no block of ``size``)."""
        zero = bytes(256)

        def fill(write):
            for i in range(0, size, 256):
                write(zero if size - i >= 256 else zero[:size - i])

        self.write(name, fill)

    def open_read(self, name):
        return self.b.open_read(_DIR + "/" + name)

    def listdir(self, name):
        return self.b.listdir(_DIR + "/" + name)

    def remove(self, name):
        self.b.remove(_DIR + "/" + name)


class Store:
    def __init__(self, board, vault):
        self.b = board
        self.v = vault
        self.meta = None
        self._mk = None
        self._drev = None  # the defaults' revision once verified (verified_defaults_rev)
        self.files = f = _Files(board)
        self.recs = Devices(f, vault)
        self.secrets = Secrets(f, vault, self._gen)
        self.rolled_back = None  # (box.json's revision, NVS's) when the flash is older (load)
        self.top_step = -1
        self.boot_top = -1
        self.status = Statuses(f, vault)
        self.over = Overrides(f)
        try:
            raw = board.read(_DIR + "/box.json")
        except OSError:
            return  # not initialised yet: init() makes it
        text, _, tag = bytes(raw).decode().rpartition("\n")
        if not vault.mac_ok("box.json", text, tag):
            raise Tampered("store/box.json fails its MAC: the box's flash was written by "
                           "something other than the box; restore the store from its backup")
        self.meta = json.loads(text)
        try:  # the defaults' revision as its header says (checked at the first exchange)
            drev = int.from_bytes(self.files.read_at("defaults.bin", 0, 4), "big")
        except OSError:
            drev = 0
        self.recs.load(self._name_of, drev)
        self._apply_revoked()
        known = nvs_get(board, "rev")
        if known is not None and self.meta.get("srev", 0) < known:
            self.rolled_back = (self.meta.get("srev", 0), known)
        listed = set(self._revoked())
        unlisted = [slot for slot in range(self.recs.used)
                    if self.recs.flags[slot] & 3 == 3 and slot not in listed]
        if unlisted and not self.rolled_back:  # revoked by a box from before the list: listed
            self.meta.setdefault("revoked", []).extend(unlisted)  # now, once
            self._save_meta()
        # the highest TOTP step the box accepted, from NVS too: records put back lower it
        # nowhere (the clock's floor, and no step below it less the window is taken)
        self.boot_top = nvs_get(board, "top")
        self.boot_top = -1 if self.boot_top is None else self.boot_top
        self.top_step = max(self.recs.top_ctr, self.boot_top)

    # -- one state of the store (docs/STORE.md "Copied back"): box.json, MACed, names the slots
    # revoked and each slot's enrolment; its revision only grows, and NVS (another partition,
    # durable at each set) keeps the highest the box wrote, so box.json put back is seen
    def _gen(self, slot):
        return self.meta.get("gen", {}).get(str(slot), 0) if self.meta else 0

    def _revoked(self):
        return self.meta.get("revoked", ()) if self.meta else ()

    def _apply_revoked(self):
        """A slot box.json says is revoked is never active, whatever its record says (a record
        copied back from before the revocation reads as tampered)."""
        for slot in self._revoked():
            if slot < self.recs.used and self.recs.active(slot):
                self.recs._set_active(slot, False)
                self.recs.flags[slot] |= F_TAMPERED  # shown as such on the page

    def accept_restore(self):
        """The operator restored the box's flash from a backup on purpose: take its state as
        the box's from now on (revocations made since the backup must be made again: `fleet
        diff` lists them)."""
        if self.rolled_back:
            nvs_set(self.b, "rev", self.meta.get("srev", 0))
            self.rolled_back = None

    def _name_of(self, slot):
        try:
            return self.secrets.read(slot)[0]
        except ValueError:
            return None

    # -- files
    def _write(self, name, *parts):
        self.files.write(name, *parts)

    def _save_meta(self):
        text = json.dumps(self.meta)
        self._write("box.json", text, "\n", self.v.mac("box.json", text))
        if not self.rolled_back:  # NVS after the file: a cut between leaves NVS behind, not ahead
            nvs_set(self.b, "rev", self.meta.get("srev", 0))

    def _room(self, new_bytes, what):
        """Refuse, before writing, a change that would leave the flash without its reserve."""
        free, block = self.b.free_blocks()
        need = 2 * (new_bytes + block - 1) // block + 1  # the new copy beside the old, metadata
        if free - need < _RESERVE:
            raise Conflict("flash full: %s needs %d blocks of %d B, %d are free and %d are kept "
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

    def init(self, box_id, ssid, psk, max_clients=8, port=80, master=None, lock_key=None):
        """First-time set-up of the box: identity, AP settings, fresh fleet master key.

        While sealed the box runs its AP as SSID-locked with ``lock_key`` (kept in clear: it
        reaches the admin page's login and nothing else); the fleet's AP passphrase ``psk`` is
        sealed and used only once the box is unlocked (docs/SEALING.md). ``max_clients``
        stations at once: 8 by default, the DHCP pool of stock MicroPython's softAP (a ninth
        station would take over the oldest lease); up to 10 with the firmware `make firmware`
        builds, whose sdkconfig raises the pool to 10."""
        if not valid_id(box_id):
            raise StoreError("the box id must be 1 to 32 letters, digits, '-' or '_'")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise StoreError("the port must be 1 to 65535")
        if not 8 <= len(psk) <= 63:
            raise StoreError("the AP passphrase must be 8 to 63 characters")
        if not 1 <= len(ssid.encode()) <= 25:
            raise StoreError("the AP name must be 1 to 25 bytes (-locked is added while sealed)")
        lock_key = lock_key or self.b.random(12).hex()
        if not 8 <= len(lock_key) <= 63 or lock_key == psk:
            raise StoreError("the sealed AP's key must be 8 to 63 characters, not the fleet's")
        if not 1 <= max_clients <= 10:
            raise StoreError("max_clients must be 1 to 10 (the softAP's limit; 8 on stock "
                             "firmware)")
        for d in ("", "/d", "/t", "/s", "/o"):
            self.b.mkdir(_DIR + d)
        self._write("mk.bin", self.v.seal(master or self.b.random(32), "mk"))
        self._write("psk.bin", self.v.seal(psk.encode(), "psk"))
        self.meta = {"box": box_id, "ssid": ssid, "max_clients": max_clients, "port": port,
                     "rev": 1, "floor": 0, "lock_ssid": ssid + "-locked", "lock_key": lock_key}
        self._save_meta()
        self._put_stream("defaults.bin", "defaults", {}, 1)
        self._drev = 1
        self.recs.load(None, 1)

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
        self.meta["srev"] = self.meta.get("srev", 0) + 1
        if pending:
            self.meta["pending"] = pending
        self._save_meta()
        return self.meta["rev"]

    def next_state(self):
        """The store's state moves on (a device enrolled or revoked): box.json, then NVS."""
        self.meta["srev"] = self.meta.get("srev", 0) + 1
        self._save_meta()

    def set_floor(self, unix):
        """Persist a time the clock was set to: it may never be set behind it again."""
        if unix > self.meta["floor"]:
            self.meta["floor"] = unix
            self._save_meta()

    def step_floor(self, rec):
        """The step a code of ``rec``'s device must come after: its own last one, and no step
        the box may have taken before it started (records put back hold older steps: NVS holds
        the highest taken), nor one under the highest taken since less the window."""
        return max(rec["ctr"], self.boot_top, self.top_step - 3)

    def floor(self):
        """The earliest the clock can be now: past the last time it was set and every time a
        code was accepted (a device's last step, less the one step of skew the box allows).
        Derived from the device records the exchanges write anyway: no write of its own."""
        return max(self.meta["floor"], (max(self.recs.top_ctr, self.top_step) - 1) * 30)

    # -- devices: the exchange's path (api.py)
    def lookup(self, dev):
        """(slot, TOTP secret) of enrolled ``dev`` if it can authenticate, else None. Reads one
        secrets entry (two if another id shares its 20-bit hash)."""
        if not valid_id(dev):
            return None
        if self.rolled_back:
            raise Tampered("the store is state %d, older than the %d this box wrote: its flash "
                           "was put back; the operator must accept it (admin.accept_restore())"
                           % self.rolled_back)
        for slot in self.recs.candidates(dev):
            if self.recs.active(slot):
                try:
                    name, secret = self.secrets.read(slot)
                except ValueError:  # an entry of another enrolment put back, or altered
                    raise Tampered("the secrets entry of slot %d does not open" % slot) from None
                if name == dev:
                    return slot, secret
        return None

    def decoy_slot(self, dev):
        """The slot an id the box does not know reads instead: an enrolled one's, picked by the
        id, so its files are of the same kind and size (None on an empty box)."""
        return self.recs.active_slot(id_hash(dev) * 31 + len(dev))

    def decoy_secret(self, slot):
        """The work of lookup() for an unknown id: the secrets entry of ``slot`` read and opened.
        Returns those bytes (someone else's secret, only ever mixed into a decoy key) or 20
        zero bytes."""
        if slot is not None:
            try:
                name, secret = self.secrets.read(slot)
                if secret:
                    return secret
            except ValueError:
                pass
        return bytes(20)

    def record(self, slot, dev):
        """The record of ``dev`` in ``slot``; Tampered if it fails its MAC."""
        name, rec = self.recs.read(slot, dev)
        if rec is None:
            raise Tampered("the record of %s is gone" % dev)
        return rec

    def decoy_record(self, slot):
        """The work of record() for an unknown id: ``slot``'s record read and its MAC checked.
        Returns None."""
        if slot is not None:
            try:
                self.recs.read(slot)
            except Tampered:
                pass
        return None

    def save_device(self, dev, rec):
        """Rewrite ``dev``'s record in place (one fixed-size record of its group file); a TOTP
        step above any taken before goes to NVS too (once a step, 30 s, whatever the fleet)."""
        self.recs.write(rec["slot"], dev, rec)
        if rec.get("ctr", -1) > self.top_step:
            self.top_step = rec["ctr"]
            nvs_set(self.b, "top", rec["ctr"])

    def save_status(self, dev, rec, status):
        """Persist ``status`` as what the operator sees of ``dev`` after a reboot, and the
        record ``rec`` with it (its error's hash says which error was persisted)."""
        self.status.put(rec["slot"], dev, status)
        rec["eh"] = err_hash(status.get("err")) if status else 0
        self.save_device(dev, rec)

    # -- devices: the operator's path
    def _find(self, dev):
        """(slot, record) of ``dev`` whatever its state, or (None, None); Tampered if its record
        fails its MAC."""
        if not valid_id(dev):
            return None, None
        for slot in self.recs.candidates(dev):
            try:
                name, rec = self.recs.read(slot)
            except Tampered:
                name = rec = None
                if self.secrets.read(slot)[0] == dev:
                    raise Tampered("the record of %s fails its MAC" % dev) from None
            if name == dev:
                return slot, rec
        return None, None

    def device(self, dev):
        """The device's record (dict) or None; Tampered if its record fails its MAC."""
        return self._find(dev)[1]

    def devices(self, status=True):
        """Every enrolled device as (id, record), in slot order, a group at a time; with
        ``status`` each record has its persisted status as "st". A record that fails its MAC
        comes as (the id its secrets entry names, or "slot-N", a "tampered" record)."""
        g = 0
        while True:
            entries = self.recs.group(g)
            if entries is None:
                return
            named = []
            for slot, dev, rec in entries:
                if dev is not None and self.recs.flags[slot] & F_TAMPERED:
                    rec = dict(_TAMPERED, slot=slot)  # valid, but box.json revoked its slot
                if dev is None:
                    try:
                        dev = self.secrets.read(slot)[0]
                    except ValueError:
                        dev = None
                    rec = dict(_TAMPERED, slot=slot)
                    dev = dev or "slot-%d" % slot
                named.append((slot, dev, rec))
            del entries
            sts = self.status.group(g * GROUP, {slot: dev for slot, dev, _ in named}) \
                if status else {}
            for _, dev, rec in named:
                rec["st"] = sts.get(dev)
                yield dev, rec
            g += 1

    def search(self, text):
        """The slots whose id contains ``text``, as the records say (unverified: a search; the
        rows shown are read through their MAC), a group file at a time."""
        out = []
        want = text.encode()
        g = 0
        while True:
            try:
                raw = self.recs.read_group(g)
            except OSError:
                return out
            for i in range(GROUP):
                at = i * RECORD
                n = raw[at + 1]
                if raw[at] and 0 < n <= 32 and want in bytes(raw[at + 2:at + 2 + n]):
                    out.append(g * GROUP + i)
            g += 1

    def sort_keys(self, slots, field, now):
        """``slots`` (a list) made sort keys in place, each a small int that sorts as ``field``
        does and names its slot in its low 10 bits: "seen" (minutes since last seen, never
        seen last) or "ver" (the version stored), read from the records a group at a time."""
        at = field_at("seen" if field == "seen" else "ack")
        raw, g = None, -1
        for i, slot in enumerate(slots):
            if slot // GROUP != g:
                g = slot // GROUP
                raw = self.recs.read_group(g)
            o = (slot % GROUP) * RECORD + at
            v = int.from_bytes(bytes(raw[o:o + 4]), "big")
            if field == "seen":
                v = (now - v) // 60 if v else 0xFFFFF
            slots[i] = min(max(v, 0), 0xFFFFF) << 10 | slot
        del raw

    def device_ids(self):
        return sorted(dev for dev, _ in self.devices(False))

    def enroll(self, dev):
        """Enrol ``dev``: returns its bootstrap secrets (device key, TOTP secret) once."""
        if not valid_id(dev):
            raise StoreError("device id: 1-32 of A-Z a-z 0-9 - _")
        slot, old = self._find(dev)
        if old is not None and old["state"] != "revoked":
            raise Conflict("device %s is already enrolled" % dev)
        if slot is None:
            if self.recs.used >= MAX_DEVICES:
                raise Conflict("the box holds at most %d devices" % MAX_DEVICES)
            slot = self.recs.used
            if slot % GROUP == 0:  # a new group: its record, secrets and status files
                self._room(3 * 2048, "enrolling " + dev)
        totp = self.b.random(20)
        if old is not None:  # enrolled again: a new generation, the old entry opens nothing
            gen = self.meta.setdefault("gen", {})
            gen[str(slot)] = gen.get(str(slot), 0) + 1
            if slot in self._revoked():
                self.meta["revoked"].remove(slot)
        self.next_state()  # box.json first: the state the files must match
        self.secrets.put(slot, dev, totp)
        # overrides kept from before a revoke stay the device's: its record names their revision
        orev = self.over.entry(slot)[0]
        self.save_device(dev, {"state": "enrolled", "seen": 0, "ack": 0, "ctr": -1,
                               "orev": orev, "slot": slot})
        if old is None:
            self.recs.add(dev, slot)
        else:
            self.status.put(slot, dev, None)
        return {"dev": dev, "dk": protocol.device_key(self.master_key(), dev), "totp": totp}

    def rekey(self, dev):
        """New secrets for ``dev`` (a device whose secrets may have leaked, or a replacement
        board under the same id): a new TOTP secret, so the old pair opens nothing. Its device
        key is fixed by the master key and its id (PROTOCOL.md s.1)."""
        if self.device(dev) is None:
            raise NotFound("no device %s" % dev)
        self.revoke(dev)
        return self.enroll(dev)

    def flash(self):
        """Flash use: blocks free and in all, and how many more devices fit."""
        free, block = self.b.free_blocks()
        n = self.recs.count()
        room = max(0, free - _RESERVE) * block // 4096 * GROUP // 4  # 4 blocks a group
        return {"free": free, "block": block, "devices": n,
                "more": max(0, min(MAX_DEVICES - self.recs.used, room))}

    def totp_secret(self, dev):
        found = self.lookup(dev)
        if found is None:
            raise KeyError(dev)
        return found[1]

    def revoke(self, dev):
        """Revoke ``dev`` for good: its TOTP secret is erased and its record says "revoked", so
        neither factor it holds opens anything again (enrol it anew to bring it back)."""
        slot, rec = self._find(dev)
        if rec is None:
            raise NotFound("no device %s" % dev)
        if slot not in self._revoked():  # box.json first: from here on it is revoked
            self.meta.setdefault("revoked", []).append(slot)
        self.next_state()
        self.secrets.erase(slot)
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
        known = self.meta.get("drev", 0)
        if rev < known:
            raise Tampered("store/defaults.bin is revision %d, older than the store's %d: an "
                           "old copy put back" % (rev, known))
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

    def open_overrides(self, dev, slot=None):
        """(revision, RecordReader, SealReader or None, file or None) over ``dev``'s overrides
        (none: an empty stream), read from the flash as it goes."""
        if slot is None:
            slot = self._find(dev)[0]
        rev, src, f = self.over.open(slot) if slot is not None else (0, None, None)
        if not rev:
            return 0, RecordReader(_bytes_source(b"")), None, None
        sealed = self.v.reader("ov:%s@%d" % (dev, rev), src)
        return rev, RecordReader(sealed.readinto), sealed, f

    def reconcile(self):
        """At boot, after a change of overrides that a power cut interrupted: the device's cached
        overrides revision as its group's table says, and no file of it left over. box.json
        names that device from the start of the change (bump) to here. Returns how many were
        repaired."""
        dev = self.meta.get("pending")
        if not dev:
            return 0
        slot, rec = self._find(dev)
        fixed = 0
        if rec is not None:
            rev, _, n = self.over.entry(slot)
            if rec["orev"] != rev:
                rec["orev"] = rev
                self.save_device(dev, rec)
                fixed = 1
            keep = own_file(slot, rev) if rev and n == FILE else None
            for name in self.over.own_files(slot):
                if name != keep:
                    self.files.remove(name)
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
        try:
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
        finally:
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
            n, size = json_sizes(cfg, 0)
        except (config.ConfigError, records.RecordError) as e:
            raise Refused("config of %s: %s" % (dev, e)) from None
        if n > protocol.MAX_CONFIG:
            raise Refused("config of %s would be %d bytes; the cap is %d"
                             % (dev, n, protocol.MAX_CONFIG))
        if size > protocol.MAX_RECORDS:
            raise Refused("config of %s would be %d bytes as records (deep paths repeat); "
                             "the cap is %d" % (dev, size, protocol.MAX_RECORDS))
        return size

    def set_defaults(self, defaults):
        """Replace the fleet-wide defaults; every device's version moves on."""
        if not isinstance(defaults, dict):
            raise StoreError("defaults must be a JSON object")
        size = self._check("a device without overrides", defaults, {})
        for dev, rec in self.devices(False):
            if rec["orev"]:
                self._check(dev, defaults, self.overrides(dev))
        self._room(size + 64, "the defaults")
        rev = self.bump()
        self._drev = None
        self._put_stream("defaults.bin", "defaults", defaults, rev)
        # the MACed meta names the current defaults: an older, validly sealed defaults.bin
        # copied back is refused (verified_defaults_rev); a cut before this line leaves the
        # new file at the bumped revision, which is accepted and recorded at the next read
        self.meta["drev"] = rev
        self._save_meta()
        self._drev = rev
        self.recs.defaults_changed(rev)

    def move_on(self):
        """After restoring the box from an older backup: devices hold versions newer than the
        box's and refuse its configs (no rollback). Re-issue the defaults, unchanged, at a
        revision above every version a device acknowledged or reported; returns it."""
        top = 0
        for _, rec in self.devices(False):
            top = max(top, rec["ack"], rec.get("ahead", 0))
        if top >= self.meta["rev"]:
            self.meta["rev"] = top
        self.set_defaults(self.defaults())
        return self._drev

    def set_overrides(self, dev, overrides):
        """Replace ``dev``'s overrides ({} clears them); that device's version moves on."""
        slot, rec = self._find(dev)
        if rec is None:
            raise NotFound("no device %s: enrol it first" % dev)
        if not isinstance(overrides, dict):
            raise StoreError("overrides must be a JSON object")
        self._check(dev, self.defaults(), overrides)
        try:
            recs = compose.flatten(overrides, True)
        except records.RecordError as e:
            raise Refused("overrides of %s: %s" % (dev, e)) from None
        n = sum(5 + len(p) + len(v) for p, _, v in recs)
        size = 1 + 16 + (n // 16 + 1) * 16 + 32  # sealed: version, IV, padded records, tag
        self._room(size * 2 + 16 * 1024, "the overrides of " + dev)
        if self.meta.get("pending"):
            self.reconcile()
        rev = self.bump(dev)
        label = "ov:" + dev
        # content and revision change together, in one atomic write of the group's file
        gone = self.over.put(slot, rev, lambda write: self._seal_records(recs, label, rev, write),
                             size)
        rec["orev"] = rev
        self.save_device(dev, rec)
        if gone:
            self.files.remove(gone)
        del self.meta["pending"]  # landed whole
        self._save_meta()
