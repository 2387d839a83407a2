# PBKDF2-HMAC-SHA256 (RFC 8018): stretches a passphrase into a key.
import hashlib

from shared.mac import key_pads

_HLEN = 32


def pbkdf2_sha256(password, salt, iterations, length=32):
    """PBKDF2-HMAC-SHA256 -> ``length`` bytes. ``password`` and ``salt`` are bytes."""
    if iterations < 1 or length < 1:
        raise ValueError("pbkdf2 parameters")
    ipad, opad = key_pads(hashlib.sha256, password)  # padded once, reused every iteration

    def prf(msg):
        h = hashlib.sha256(ipad)
        h.update(msg)
        o = hashlib.sha256(opad)
        o.update(h.digest())
        return o.digest()

    out = bytearray()
    block = 1
    while len(out) < length:
        u = prf(salt + block.to_bytes(4, "big"))
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            u = prf(u)
            acc ^= int.from_bytes(u, "big")
        out.extend(acc.to_bytes(_HLEN, "big"))
        block += 1
    return bytes(out[:length])
