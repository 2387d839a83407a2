# Config records made, and composed on the fly: a JSON object as its sorted record stream
# (shared/records.py), and a device's config as the fleet defaults with the device's overrides
# applied as a JSON Merge Patch (RFC 7386), both read as record streams and the result written as
# one, record by record. Neither input nor the result is ever whole in RAM.
import json

from shared.records import DELETE, MAX_PATH, MAX_VALUE, OBJECT, SEP, VALUE, RecordError


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


def _under(path, top):
    return top is not None and (path == top or path.startswith(top + SEP))


def compose(defaults, overrides, out):
    """Write merge(defaults, overrides) to ``out(bytes-like)``; both are RecordReaders.

    In record terms: an override's OBJECT keeps what the defaults have below it and replaces a
    non-object there; its VALUE replaces the defaults' record at that path and all below; its
    DELETE removes them. Everything else of the defaults passes through. A generator: it yields
    after each record and each piece of a long value, so a server can send as it goes.
    """
    d = defaults.next()
    p = overrides.next()
    cover = None  # the override path whose subtree in the defaults is replaced or deleted
    while d is not None or p is not None:
        if p is None or (d is not None and d[1] < p[1]):
            if _under(d[1], cover):
                d = defaults.next()
                continue
            out(header(d[0], d[1], d[2]))
            while True:
                c = defaults.chunk()
                if c is None:
                    break
                out(c)
                yield
            d = defaults.next()
            continue
        same = d is not None and d[1] == p[1]
        kind = p[0]
        if kind == OBJECT:
            out(header(OBJECT, p[1], 0))
        elif kind == DELETE:
            cover = p[1]
        else:
            cover = p[1]
            out(header(kind, p[1], p[2]))
            while True:
                c = overrides.chunk()
                if c is None:
                    break
                out(c)
                yield
        if same:
            d = defaults.next()
        p = overrides.next()
        yield
