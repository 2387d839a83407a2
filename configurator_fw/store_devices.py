# Device records: one fixed-size record per enrolled device, in group files of GROUP records,
# each updated in place. What an exchange reads and writes is one record of one group file,
# and a group file has the same size whether one of its records is used or all: the cost of an
# exchange does not depend on how many devices are enrolled (docs/STORE.md counts it at the
# flash). A device's slot is given at enrolment, in order, and kept for good (a revoked device
# keeps it: enrolling it again reuses it).
#
# A record (RECORD bytes): state, id length, id (32 bytes, zero padded), seven big-endian
# 32-bit fields (TOTP step + 1, last seen, version acknowledged, overrides revision, version a
# device said it holds above the box's, its last IP, a hash of its last error), then a 16-byte
# MAC over the slot number, the id and those bytes under the vault. A record moved to another
# slot, edited, or taken from another device fails its MAC: Tampered, for that device alone.
import hashlib

from shared import ct, protocol

GROUP = 16
RECORD = 80
_BODY = 64
_FIELDS = ("ctr", "seen", "ack", "orev", "ahead", "ip", "eh")
_AT = 34  # the fields' offset in a record, 4 bytes each


def field_at(name):
    """The offset of field ``name`` in a record (a sort reads it without opening the record)."""
    return _AT + 4 * _FIELDS.index(name)
STATES = ("", "enrolled", "provisioned", "revoked")
MAX_SLOTS = 1024  # the index packs a slot in 10 bits
_ZERO = bytes(RECORD)
# a slot's flags in RAM (the admin page's counts, filters and sorts without reading the flash)
F_STATE = 0x03  # its index in STATES (0: a record that failed its MAC)
F_TAMPERED = 0x04
F_FAILED = 0x08  # its last status reported an error
F_BEHIND = 0x10  # it has not stored its current version
F_NEVER = 0x20  # never seen


class StoreError(ValueError):
    """An operator-side request the store refuses; the message says what to do. ``status`` is
    the admin API's answer to it (docs/openapi.yaml): 400, the request itself is wrong."""

    status = 400


class NotFound(StoreError):
    """No such device."""

    status = 404


class Conflict(StoreError):
    """The request is well formed but the box's state refuses it (already enrolled, no room)."""

    status = 409


class Refused(StoreError):
    """The request fits its schema but a rule the schema cannot state refuses it (a config that
    fails its checks or its caps)."""

    status = 422


class Tampered(Conflict):
    """A stored record fails its MAC: someone wrote to the box's flash."""


def id_hash(dev):
    """20 bits of SHA-256(dev): with a slot's 10 bits, one small int per device in RAM."""
    d = hashlib.sha256(dev.encode()).digest()
    return (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)


def err_hash(err):
    """A 32-bit hash of a device's reported error (0 for none): the record says whether a new
    status carries a new error without the status being read."""
    if err is None:
        return 0
    return int.from_bytes(hashlib.sha256(str(err).encode()).digest()[:4], "big") | 1


def group_file(slot):
    return "d/%02d.bin" % (slot // GROUP)


def _u32(v):
    return (v & 0xFFFFFFFF).to_bytes(4, "big")


def _i32(b, i):
    return int.from_bytes(b[i:i + 4], "big")


class Devices:
    """The records, through ``files`` (the store's file functions) and ``vault``; an index in
    RAM (4 bytes per device) finds a device's slot without reading a file."""

    def __init__(self, files, vault):
        self.f = files
        self.v = vault
        self._index = []  # sorted id_hash << 10 | slot, small ints
        self._active = bytearray(MAX_SLOTS // 8)  # slots that can authenticate
        self.used = 0  # slots given out: the next device gets this one
        self.made = 0  # slots whose group file exists (no stat at each exchange's write)
        self.top_ctr = -1  # the highest TOTP step any device has used (the clock's floor)
        self.drev = 0  # the defaults' revision: a device below max(drev, orev) is behind
        self.flags = bytearray(MAX_SLOTS)  # per slot, in RAM (1 KB, made once)

    # -- the record's bytes
    def _tag(self, slot, dev, body):
        return protocol.mac(self.v.index_key(), "dev", slot, dev, body)[:16]

    def pack(self, slot, dev, rec):
        d = dev.encode()
        body = bytearray(_BODY)
        body[0] = STATES.index(rec["state"])
        body[1] = len(d)
        body[2:2 + len(d)] = d
        vals = (rec["ctr"] + 1, rec["seen"], rec["ack"], rec["orev"], rec.get("ahead", 0),
                rec.get("ip", 0), rec.get("eh", 0))
        for i, v in enumerate(vals):
            body[_AT + 4 * i:_AT + 4 + 4 * i] = _u32(v)
        return bytes(body) + self._tag(slot, dev, bytes(body))

    def unpack(self, slot, raw, dev=None):
        """(id, record dict) of a record's bytes; Tampered if its MAC fails (or it names another
        id than ``dev``); (None, None) for a slot never used."""
        if len(raw) != RECORD:
            raise Tampered("the record in slot %d is cut short" % slot)
        raw = bytes(raw)
        if raw == _ZERO:
            return None, None
        body = raw[:_BODY]
        n = body[1]
        try:
            name = body[2:2 + n].decode() if 0 < n <= 32 else None
        except UnicodeError:
            name = None
        if name is None or body[0] >= len(STATES) or body[0] == 0 or (dev and name != dev) \
                or not ct.equal(self._tag(slot, name, body), raw[_BODY:]):
            raise Tampered("the record of %s fails its MAC" % (dev or "slot %d" % slot))
        rec = {"state": STATES[body[0]], "slot": slot}
        for i, k in enumerate(_FIELDS):
            rec[k] = _i32(body, _AT + 4 * i)
        rec["ctr"] -= 1
        return name, rec

    # -- files
    def read(self, slot, dev=None):
        raw = self.f.read_at(group_file(slot), (slot % GROUP) * RECORD, RECORD)
        return self.unpack(slot, raw, dev)

    def write(self, slot, dev, rec):
        """Rewrite one record in place: the group file keeps its size (LittleFS copies the block
        and commits it whole at close, so a power cut leaves the old record or the new one)."""
        name = group_file(slot)
        if slot >= self.made:  # a new group: made at its full size once
            if not self.f.exists(name):
                self.f.make(name, GROUP * RECORD)
            self.made = (slot // GROUP + 1) * GROUP
        self.f.write_at(name, (slot % GROUP) * RECORD, self.pack(slot, dev, rec))
        self.top_ctr = max(self.top_ctr, rec["ctr"])
        self._set_active(slot, rec["state"] in ("enrolled", "provisioned"))
        self._note(slot, rec)

    def _note(self, slot, rec):
        """Keep ``slot``'s flags in RAM (``rec`` None: a record that failed its MAC)."""
        if rec is None:
            self.flags[slot] = F_TAMPERED
            return
        st = STATES.index(rec["state"])
        f = st
        if rec.get("eh"):
            f |= F_FAILED
        if st != 3:  # a revoked device is neither behind nor awaited
            if rec["ack"] != max(self.drev, rec["orev"]):
                f |= F_BEHIND
            if not rec["seen"]:
                f |= F_NEVER
        self.flags[slot] = f

    def defaults_changed(self, rev):
        """The defaults moved to ``rev`` (above every version): every device is behind."""
        self.drev = rev
        for s in range(self.used):
            if self.flags[s] & F_STATE not in (0, 3):
                self.flags[s] |= F_BEHIND

    def _set_active(self, slot, on):
        if on:
            self._active[slot >> 3] |= 1 << (slot & 7)
        else:
            self._active[slot >> 3] &= ~(1 << (slot & 7)) & 0xFF

    def active(self, slot):
        return bool(self._active[slot >> 3] & (1 << (slot & 7)))

    def read_group(self, g):
        """Group ``g``'s file, read into one block of its size (a read to the end would grow
        its buffer in steps, a block of each size in turn); OSError past the last group."""
        buf = bytearray(GROUP * RECORD)
        with self.f.open_read("d/%02d.bin" % g) as fh:
            n = fh.readinto(buf)
        return memoryview(buf)[:n]

    # -- the index
    def group(self, g):
        """[(slot, id, record)] of group ``g``'s used slots, read in one go; a record that fails
        its MAC comes as (slot, None, the Tampered error). None past the last group."""
        try:
            mv = self.read_group(g)
        except OSError:
            return None
        out = []
        for i in range(GROUP):
            slot = g * GROUP + i
            try:
                dev, rec = self.unpack(slot, mv[i * RECORD:(i + 1) * RECORD])
            except Tampered as e:
                out.append((slot, None, e))
                continue
            if dev is not None:
                out.append((slot, dev, rec))
        return out

    def load(self, name_of=None, drev=0):
        """Read every record once (at boot): the index, the slots in use, the highest TOTP
        step taken. A record that fails its MAC keeps its slot (never given out again) and is
        indexed under the id ``name_of(slot)`` gives, if any, so it shows as tampered."""
        # the index at its full size at once, before the group reads fragment the heap: grown
        # by appends, a 1,000-device box's boot needed a free 4 KB block at its most crowded
        idx = [0] * MAX_SLOTS
        n = 0
        used = 0
        top = -1
        self.drev = drev
        self.flags[:] = bytes(MAX_SLOTS)
        for g in range((MAX_SLOTS + GROUP - 1) // GROUP):
            entries = self.group(g)
            if entries is None:
                break
            for slot, dev, rec in entries:
                used = slot + 1
                self._note(slot, rec if dev else None)
                if dev is None:
                    dev = name_of(slot) if name_of else None
                    if dev:
                        idx[n] = id_hash(dev) << 10 | slot
                        n += 1
                    continue
                idx[n] = id_hash(dev) << 10 | slot
                n += 1
                self._set_active(slot, rec["state"] in ("enrolled", "provisioned"))
                top = max(top, rec["ctr"])
        del idx[n:]
        idx.sort()
        self._index = idx
        self.used = used
        self.made = g * GROUP
        self.top_ctr = top

    def add(self, dev, slot):
        self._index.append(id_hash(dev) << 10 | slot)
        self._index.sort()
        self.used = max(self.used, slot + 1)

    def candidates(self, dev):
        """The slots whose id shares ``dev``'s 20-bit hash (usually none or one), from RAM."""
        h = id_hash(dev) << 10
        k = self._index
        lo, hi = 0, len(k)
        while lo < hi:
            mid = (lo + hi) // 2
            if k[mid] < h:
                lo = mid + 1
            else:
                hi = mid
        out = []
        while lo < len(k) and k[lo] >> 10 == h >> 10:
            out.append(k[lo] & 0x3FF)
            lo += 1
        return out

    def count(self):
        return len(self._index)

    def active_slot(self, key):
        """An active slot picked by ``key`` (an int): the decoy's, for an id the box does not
        know; None if no device can authenticate."""
        n = self.used
        for i in range(n):
            s = (key + i) % n
            if self.active(s):
                return s
        return None
