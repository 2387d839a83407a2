# Each device's overrides: a record stream sealed under the vault with label "ov:ID@REV", in a
# group file per store_devices.GROUP slots. The file starts with a table of GROUP entries
# (revision, offset, length: 12 bytes each; revision 0 for none) and the sealed streams follow
# it, so a download reads the table entry and its own stream, never its neighbours'. A sealed
# stream over INLINE bytes gets a file of its own, o/SLOT.REV.bin (length FILE in the table).
# A change rewrites the group file whole in one atomic write: content and revision together.
from configurator_fw.store_devices import GROUP

INLINE = 1024
FILE = 0xFFFFFFFF
_ENTRY = 12
_HEAD = GROUP * _ENTRY


def group_file(slot):
    return "o/%02d.bin" % (slot // GROUP)


def own_file(slot, rev):
    return "o/%d.%d.bin" % (slot, rev)


def _limited(f, n):
    left = [n]

    def read(buf):
        if left[0] <= 0:
            return 0
        mv = memoryview(buf)
        if len(mv) > left[0]:
            mv = mv[:left[0]]
        got = f.readinto(mv)
        left[0] -= got or 0
        return got or 0

    return read


class Overrides:
    def __init__(self, files):
        self.f = files

    def _table(self, name):
        try:
            return self.f.read_at(name, 0, _HEAD)
        except OSError:
            return b""

    def entry(self, slot):
        """(revision, offset, length) of ``slot``'s overrides; revision 0: none."""
        t = self._table(group_file(slot))
        i = (slot % GROUP) * _ENTRY
        if len(t) < i + _ENTRY:
            return 0, 0, 0
        return (int.from_bytes(t[i:i + 4], "big"), int.from_bytes(t[i + 4:i + 8], "big"),
                int.from_bytes(t[i + 8:i + 12], "big"))

    def open(self, slot):
        """(revision, readinto source, file) over ``slot``'s sealed stream; (0, None, None) if
        it has none. The caller closes the file."""
        rev, off, n = self.entry(slot)
        if not rev:
            return 0, None, None
        if n == FILE:
            f = self.f.open_read(own_file(slot, rev))
            return rev, f.readinto, f
        f = self.f.open_read(group_file(slot))
        f.seek(off)
        return rev, _limited(f, n), f

    def put(self, slot, rev, seal_to, size):
        """Set ``slot``'s overrides to what ``seal_to(write)`` streams (``size`` bytes, about),
        at revision ``rev`` (0 with ``seal_to`` None: remove them). Returns the file of its own
        the old stream had (the caller removes it once the record says the new revision)."""
        name = group_file(slot)
        old = self._table(name)
        if len(old) < _HEAD:
            old = bytes(_HEAD)
        me = slot % GROUP
        olds = []
        for i in range(GROUP):
            j = i * _ENTRY
            olds.append((int.from_bytes(old[j:j + 4], "big"),
                         int.from_bytes(old[j + 4:j + 8], "big"),
                         int.from_bytes(old[j + 8:j + 12], "big")))
        gone = own_file(slot, olds[me][0]) if olds[me][0] and olds[me][2] == FILE else None
        mine = None
        if seal_to is not None and size > INLINE:
            self.f.write_atomic(own_file(slot, rev), seal_to)
            mine = (rev, 0, FILE)
        elif seal_to is not None:
            parts = []
            seal_to(lambda b: parts.append(bytes(b)))
            blob = b"".join(parts)
            del parts
        table = bytearray(_HEAD)
        off = _HEAD
        plan = []  # (index, source offset or None for the new blob, length)
        for i in range(GROUP):
            rev_i, off_i, n_i = olds[i]
            if i == me:
                if seal_to is None:
                    continue
                if mine is not None:
                    rev_i, off_i, n_i = mine
                else:
                    rev_i, n_i = rev, len(blob)
                    plan.append((None, n_i))
                    off_i = off
                    off += n_i
            elif rev_i and n_i != FILE:
                plan.append((off_i, n_i))
                off_i = off
                off += n_i
            elif not rev_i:
                continue
            j = i * _ENTRY
            table[j:j + 4] = rev_i.to_bytes(4, "big")
            table[j + 4:j + 8] = off_i.to_bytes(4, "big")
            table[j + 8:j + 12] = n_i.to_bytes(4, "big")

        def body(write):
            src = None
            try:
                buf = bytearray(256)
                for start, n in plan:
                    if start is None:
                        write(blob)
                        continue
                    if src is None:
                        src = self.f.open_read(name)
                    src.seek(start)
                    while n:
                        got = src.readinto(memoryview(buf)[:min(n, len(buf))])
                        if not got:
                            raise OSError("overrides file cut short")
                        write(memoryview(buf)[:got])
                        n -= got
            finally:
                if src:
                    src.close()

        self.f.write_atomic(name, bytes(table), body)
        return gone

    def own_files(self, slot):
        """Names of ``slot``'s files of its own (one, or two after a cut power)."""
        pre = "%d." % slot
        return ["o/" + n for n in self.f.listdir("o") if n.startswith(pre) and
                n.endswith(".bin")]
