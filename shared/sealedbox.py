# The sealed box: AES-256-CBC (cryptolib) + HMAC-SHA256, encrypt-then-MAC, versioned header.
#
# Layout: version (1) | IV (16) | ciphertext (16*n, PKCS#7) | tag (32)
# tag = HMAC-SHA256(mac_key, version | IV | ciphertext | aad | len(aad) as 4 bytes)
# enc_key | mac_key = HKDF-SHA256(key, info="cfgbox sealed box v1"), 32 bytes each.
import hashlib
import os

import cryptolib

from shared.ct import equal
from shared.hkdf import hkdf
from shared.mac import hmac_parts

VERSION = 1
_CBC = 2  # cryptolib mode: the ESP32 port has no MODE_* constants
_IV = 16
_TAG = 32
OVERHEAD_MAX = 1 + _IV + 16 + _TAG  # most a box can be longer than its plaintext


class SealError(ValueError):
    """A sealed box did not open: tampered, truncated, wrong key or unknown version."""


class SealKey:
    """Encryption and MAC keys derived once from a 32-byte ``key``; reuse for many boxes."""

    def __init__(self, key):
        if len(key) < 16:
            raise ValueError("sealed box key too short")
        okm = hkdf(key, b"", b"cfgbox sealed box v1", 64)
        self._enc = okm[:32]
        self._mac = okm[32:]

    def _tag(self, head, ct, aad):
        return hmac_parts(hashlib.sha256, self._mac, (head, ct, aad, len(aad).to_bytes(4, "big")))

    def seal(self, plaintext, aad=b"", iv=None):
        """Encrypt and authenticate ``plaintext`` -> bytearray; ``aad`` is MACed, not stored.

        ``iv`` is for test vectors only: by default a fresh one comes from ``os.urandom``.
        """
        iv = iv or os.urandom(_IV)
        n = len(plaintext)
        pad = 16 - n % 16
        # one buffer for the whole box: header, ciphertext encrypted in place, tag
        out = bytearray(1 + _IV + n + pad + _TAG)
        mv = memoryview(out)
        out[0] = VERSION
        mv[1 : 1 + _IV] = iv
        body = mv[1 + _IV : 1 + _IV + n + pad]
        body[:n] = plaintext
        for i in range(n, n + pad):
            body[i] = pad
        cryptolib.aes(self._enc, _CBC, iv).encrypt(body, body)
        mv[len(out) - _TAG :] = self._tag(mv[: 1 + _IV], body, aad)
        return out

    def open(self, box, aad=b""):
        """Verify and decrypt ``box``; returns the plaintext as a bytearray.

        Raises ``SealError`` for any tampering, truncation, wrong key or unknown version;
        the padding is looked at only after the MAC has matched.
        """
        n = len(box)
        if n < 1 + _IV + 16 + _TAG or (n - 1 - _IV - _TAG) % 16:
            raise SealError("sealed box length")
        mv = memoryview(box)
        if mv[0] != VERSION:
            raise SealError("sealed box version")
        head = mv[: 1 + _IV]
        ct = mv[1 + _IV : n - _TAG]
        if not equal(self._tag(head, ct, aad), mv[n - _TAG :]):
            raise SealError("sealed box authentication")
        out = bytearray(len(ct))
        cryptolib.aes(self._enc, _CBC, bytes(mv[1 : 1 + _IV])).decrypt(ct, out)
        pad = out[-1]
        if not 1 <= pad <= 16 or out[-pad:] != bytes((pad,)) * pad:
            raise SealError("sealed box padding")
        out[len(out) - pad :] = b""
        return out


def seal(key, plaintext, aad=b""):
    """Seal ``plaintext`` under ``key`` (see ``SealKey.seal``)."""
    return SealKey(key).seal(plaintext, aad)


def unseal(key, box, aad=b""):
    """Open a box sealed under ``key`` (see ``SealKey.open``); raises ``SealError``."""
    return SealKey(key).open(box, aad)
