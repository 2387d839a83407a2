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


class Stepper:
    """PBKDF2-HMAC-SHA256 for a 32-byte key, run a slice at a time: the box's web server goes
    on serving between slices of an unlock (~10 s on an ESP32). ``step(n)`` runs up to ``n``
    iterations and says whether it is done; ``key`` is the result then. Same output as
    pbkdf2_sha256(password, salt, iterations, 32)."""

    def __init__(self, password, salt, iterations):
        if iterations < 1:
            raise ValueError("pbkdf2 parameters")
        self._pads = key_pads(hashlib.sha256, password)
        self.left = iterations - 1
        self._u = self._prf(salt + b"\x00\x00\x00\x01")
        self._acc = int.from_bytes(self._u, "big")
        self.key = None if self.left else self._u

    def _prf(self, msg):
        h = hashlib.sha256(self._pads[0])
        h.update(msg)
        o = hashlib.sha256(self._pads[1])
        o.update(h.digest())
        return o.digest()

    def step(self, n):
        if self.key is not None:
            return True
        u, acc, prf = self._u, self._acc, self._prf
        k = min(n, self.left)
        for _ in range(k):
            u = prf(u)
            acc ^= int.from_bytes(u, "big")
        self._u, self._acc, self.left = u, acc, self.left - k
        if not self.left:
            self.key = acc.to_bytes(_HLEN, "big")
            return True
        return False
