# A device's config composed on the fly: the fleet defaults with the device's overrides applied as
# a JSON Merge Patch (RFC 7386), both read as sorted record streams (shared/records.py) and the
# result written as one, record by record. Neither input nor the result is ever whole in RAM.
from shared.records import DELETE, OBJECT, SEP, header


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
        if same:
            d = defaults.next()
        p = overrides.next()
        yield
