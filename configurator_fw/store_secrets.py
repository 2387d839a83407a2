# The devices' TOTP secrets: one fixed-size entry per slot (the slot of the device's record),
# in group files of store_devices.GROUP entries, sealed under the vault with the device's id
# bound in. Written at enrolment and revocation only; an exchange reads one entry (hello).
#
# An entry (ENTRY bytes): id length, id (32 bytes, zero padded), then the sealed secret
# (shared/sealedbox.py, label "totp:ID", or "totp:ID#G" for the slot's G-th enrolment after its
# first: 81 bytes for a 20-byte secret); zeros when erased.
from configurator_fw.store_devices import GROUP

ENTRY = 128
_SEALED = 81


def group_file(slot):
    return "t/%02d.bin" % (slot // GROUP)


class Secrets:
    def __init__(self, files, vault, gen_of=lambda slot: 0):
        """``gen_of(slot)``: how many times the slot was enrolled before (box.json keeps it):
        bound into the entry's label, so an entry of an earlier enrolment copied back (a
        re-keyed device's old secret) does not open."""
        self.f = files
        self.v = vault
        self.gen_of = gen_of

    def _label(self, slot, dev):
        g = self.gen_of(slot)
        return "totp:" + dev if not g else "totp:%s#%d" % (dev, g)

    def _entry(self, slot, dev, secret):
        d = dev.encode()
        box = self.v.seal(secret, self._label(slot, dev))
        if len(box) != _SEALED:
            raise ValueError("a TOTP secret is 20 bytes")
        out = bytearray(ENTRY)
        out[0] = len(d)
        out[1:1 + len(d)] = d
        out[33:33 + _SEALED] = box
        return bytes(out)

    def _write(self, slot, data):
        name = group_file(slot)
        if not self.f.exists(name):
            self.f.make(name, GROUP * ENTRY)
        self.f.write_at(name, (slot % GROUP) * ENTRY, data)

    def put(self, slot, dev, secret):
        self._write(slot, self._entry(slot, dev, secret))

    def erase(self, slot):
        self._write(slot, bytes(ENTRY))

    def read(self, slot):
        """(id, secret) in ``slot``: (None, None) if erased; ValueError if it does not open."""
        try:
            raw = self.f.read_at(group_file(slot), (slot % GROUP) * ENTRY, ENTRY)
        except OSError:
            return None, None
        n = raw[0] if raw else 0
        if not 0 < n <= 32 or len(raw) != ENTRY:
            return None, None
        dev = bytes(raw[1:1 + n]).decode()
        return dev, bytes(self.v.open(bytes(raw[33:33 + _SEALED]), self._label(slot, dev)))
