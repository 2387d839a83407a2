# A config as a stream of records (docs/PROTOCOL.md s.3): what the box merges on the fly, what
# travels sealed, what the device stores and reads one value of, each through a small buffer.
# Reading them is here, for both ends; making them is the box's alone (configurator_fw/compose.py).
#
# record = kind (1) | path length (1) | path | value length (3, big-endian) | value
# kind: OBJECT (an object stands at path; no value), VALUE (a JSON text), DELETE (an override's
# null: the box's merge removes path and what is under it; never in a merged config).
# path: the keys from the top, UTF-8, joined by NUL (so a key may not hold NUL; at most 255 B).
# Records are sorted by path bytes: an object's record comes before everything under it, and
# everything under it comes before any later sibling, because NUL is the smallest byte.
import json

OBJECT = 0
VALUE = 1
DELETE = 2
SEP = b"\x00"
MAX_PATH = 255
MAX_VALUE = (1 << 24) - 1


class RecordError(ValueError):
    """A record stream that is not well formed: truncated, or a path or key out of bounds."""


class RecordReader:
    """Records pulled from ``src(buf) -> n`` (0 at the end) through one small buffer."""

    def __init__(self, src, size=320):
        self._src = src
        self._buf = bytearray(size)
        self._lo = self._hi = 0
        self._eof = False
        self.left = 0  # bytes of the current value not yet read

    def _need(self, n):
        if self._hi - self._lo >= n:
            return True
        buf = self._buf
        buf[: self._hi - self._lo] = memoryview(buf)[self._lo : self._hi]
        self._hi -= self._lo
        self._lo = 0
        while self._hi < n and not self._eof:
            k = self._src(memoryview(buf)[self._hi :])
            if k:
                self._hi += k
            else:
                self._eof = True
        return self._hi >= n

    def next(self):
        """(kind, path, value length) of the next record, the rest of the current value skipped;
        None at the end."""
        while self.left:
            self.chunk()
        if not self._need(1):
            return None
        if not self._need(2) or not self._need(5 + self._buf[self._lo + 1]):
            raise RecordError("record stream truncated")
        b, lo = self._buf, self._lo
        kind, plen = b[lo], b[lo + 1]
        if kind > DELETE:
            raise RecordError("record kind")
        path = bytes(b[lo + 2 : lo + 2 + plen])
        self.left = int.from_bytes(b[lo + 2 + plen : lo + 5 + plen], "big")
        self._lo = lo + 5 + plen
        return kind, path, self.left

    def chunk(self):
        """The next piece of the current value (a view, valid until the next call), or None."""
        if not self.left:
            return None
        if self._lo == self._hi:
            self._lo = self._hi = 0
            k = self._src(self._buf)
            if not k:
                raise RecordError("record stream truncated")
            self._hi = k
        k = min(self.left, self._hi - self._lo)
        mv = memoryview(self._buf)[self._lo : self._lo + k]
        self._lo += k
        self.left -= k
        return mv

    def value(self):
        """The whole current value as bytes (the caller chose to hold it)."""
        out = bytearray(self.left)
        i = 0
        while self.left:
            c = self.chunk()
            out[i : i + len(c)] = c
            i += len(c)
        return out


def _put(root, path, value):
    keys = path.split(SEP)
    d = root
    for k in keys[:-1]:
        d = d[k.decode()]
    d[keys[-1].decode()] = value


def unflatten(reader):
    """The JSON object a record stream describes (a merged config: no DELETE)."""
    root = {}
    while True:
        r = reader.next()
        if r is None:
            return root
        kind, path, _ = r
        if kind == OBJECT:
            _put(root, path, {})
        elif kind == VALUE:
            _put(root, path, json.loads(reader.value()))
        else:
            raise RecordError("a merged config holds no DELETE")


def locate(reader, keys):
    """Read records up to the one at ``keys`` (a list of str) and return its kind, the reader
    then at its value; KeyError if the sorted stream shows it absent."""
    want = SEP.join(k.encode() for k in keys)
    while True:
        r = reader.next()
        if r is None or r[1] > want and not r[1].startswith(want + SEP):
            raise KeyError("/".join(keys))
        if r[1] == want:
            return r[0], want


def read_value(reader, kind, path):
    """The value of the record just located at ``path``: a value parsed alone, an object rebuilt
    from the records under it (only that part is held in RAM)."""
    if kind == VALUE:
        return json.loads(reader.value())
    out = {}
    while True:
        r = reader.next()
        if r is None or not r[1].startswith(path + SEP):
            return out
        _put(out, r[1][len(path) + 1 :], {} if r[0] == OBJECT else json.loads(reader.value()))

