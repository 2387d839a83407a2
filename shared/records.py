# A config as a stream of records (docs/PROTOCOL.md s.3): what the box merges on the fly, what
# travels sealed, what the device stores and reads one value of, each through a small buffer.
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


def header(kind, path, vlen):
    """The bytes that open a record."""
    if len(path) > MAX_PATH or vlen > MAX_VALUE:
        raise RecordError("record too large")
    return bytes((kind, len(path))) + path + vlen.to_bytes(3, "big")


def flatten(obj, patch=False, prefix=None, out=None):
    """The records of a JSON object, sorted; ``patch`` turns None into DELETE (an override)."""
    if out is None:
        out = []
    for k in obj:
        if not isinstance(k, str) or "\x00" in k:
            raise RecordError("key %r" % (k,))
        path = k.encode() if prefix is None else prefix + SEP + k.encode()
        if len(path) > MAX_PATH:
            raise RecordError("path too long: %r" % (path,))
        v = obj[k]
        if isinstance(v, dict):
            out.append((path, OBJECT, b""))
            flatten(v, patch, path, out)
        elif v is None and patch:
            out.append((path, DELETE, b""))
        else:
            out.append((path, VALUE, json.dumps(v).encode()))
    if prefix is None:
        out.sort(key=lambda r: r[0])
    return out


def encode(records):
    """A whole record stream as bytes (for small ones: overrides, tests)."""
    return b"".join(header(k, p, len(v)) + v for p, k, v in records)


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


def find(reader, keys):
    """The value at ``keys`` (a list of str) from a merged stream: an object is rebuilt from its
    records, a value parsed alone; KeyError if absent. Only that part is held in RAM."""
    want = SEP.join(k.encode() for k in keys)
    while True:
        r = reader.next()
        if r is None or r[1] > want and not r[1].startswith(want + SEP):
            raise KeyError("/".join(keys))
        kind, path, _ = r
        if path != want:
            continue
        if kind == VALUE:
            return json.loads(reader.value())
        out = {}
        while True:
            r = reader.next()
            if r is None or not r[1].startswith(want + SEP):
                return out
            _put(out, r[1][len(want) + 1 :], {} if r[0] == OBJECT else json.loads(reader.value()))
