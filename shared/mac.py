# HMAC-SHA256 and HMAC-SHA1 (RFC 2104) over hashlib: MicroPython has no hmac module.
import hashlib

_BLOCK = 64  # both SHA-1 and SHA-256 have a 64-byte block
_IPAD = int.from_bytes(b"\x36" * _BLOCK, "big")
_OPAD = int.from_bytes(b"\x5c" * _BLOCK, "big")


def key_pads(hfun, key):
    """The inner and outer HMAC pads of ``key`` (RFC 2104), for callers that reuse them.

    The XOR runs on one big integer, not byte by byte in Python: this is on every MAC's path.
    """
    if len(key) > _BLOCK:
        key = hfun(key).digest()
    k = int.from_bytes(bytes(key) + bytes(_BLOCK - len(key)), "big")
    return (k ^ _IPAD).to_bytes(_BLOCK, "big"), (k ^ _OPAD).to_bytes(_BLOCK, "big")


class Hmac:
    """An HMAC computed incrementally: ``update`` as data streams by, then ``digest`` once."""

    def __init__(self, hfun, key):
        self._hfun = hfun
        ipad, self._opad = key_pads(hfun, key)
        self._inner = hfun(ipad)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        outer = self._hfun(self._opad)
        outer.update(self._inner.digest())
        return outer.digest()


def hmac_parts(hfun, key, parts):
    """HMAC of the concatenation of ``parts`` (bytes-like) without building it in RAM.

    ``hfun`` is ``hashlib.sha256`` or ``hashlib.sha1``; returns the digest as bytes.
    """
    h = Hmac(hfun, key)
    for p in parts:
        h.update(p)
    return h.digest()


def hmac_sha256(key, msg):
    """HMAC-SHA256(key, msg) -> 32 bytes."""
    return hmac_parts(hashlib.sha256, key, (msg,))


def hmac_sha1(key, msg):
    """HMAC-SHA1(key, msg) -> 20 bytes."""
    return hmac_parts(hashlib.sha1, key, (msg,))
