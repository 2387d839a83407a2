# HKDF-SHA256 (RFC 5869): extract-then-expand key derivation.
from shared.mac import hmac_parts, hmac_sha256
import hashlib

HASH_LEN = 32


def extract(salt, ikm):
    """HKDF-Extract: PRK = HMAC-SHA256(salt, ikm); an empty salt means 32 zero bytes."""
    return hmac_sha256(salt or bytes(HASH_LEN), ikm)


def expand(prk, info, length):
    """HKDF-Expand: ``length`` (at most 255 * 32) bytes of output keying material."""
    if not 0 < length <= 255 * HASH_LEN:
        raise ValueError("hkdf length")
    out = bytearray()
    t = b""
    i = 1
    while len(out) < length:
        t = hmac_parts(hashlib.sha256, prk, (t, info, bytes((i,))))
        out.extend(t)
        i += 1
    return bytes(out[:length])


def hkdf(ikm, salt=b"", info=b"", length=32):
    """HKDF-SHA256(ikm, salt, info) -> ``length`` bytes."""
    return expand(extract(salt, ikm), info, length)
