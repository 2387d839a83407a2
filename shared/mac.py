# HMAC-SHA256 and HMAC-SHA1 (RFC 2104) over hashlib: MicroPython has no hmac module.
import hashlib

_BLOCK = 64  # both SHA-1 and SHA-256 have a 64-byte block


def key_pads(hfun, key):
    """The inner and outer HMAC pads of ``key`` (RFC 2104), for callers that reuse them."""
    if len(key) > _BLOCK:
        key = hfun(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_parts(hfun, key, parts):
    """HMAC of the concatenation of ``parts`` (bytes-like) without building it in RAM.

    ``hfun`` is ``hashlib.sha256`` or ``hashlib.sha1``; returns the digest as bytes.
    """
    ipad, opad = key_pads(hfun, key)
    inner = hfun(ipad)
    for p in parts:
        inner.update(p)
    outer = hfun(opad)
    outer.update(inner.digest())
    return outer.digest()


def hmac_sha256(key, msg):
    """HMAC-SHA256(key, msg) -> 32 bytes."""
    return hmac_parts(hashlib.sha256, key, (msg,))


def hmac_sha1(key, msg):
    """HMAC-SHA1(key, msg) -> 20 bytes."""
    return hmac_parts(hashlib.sha1, key, (msg,))
