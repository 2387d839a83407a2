# The sealed box: AES-256-CBC (cryptolib) + HMAC-SHA256, encrypt-then-MAC, versioned header.
#
# Layout: version (1) | IV (16) | ciphertext (16*n, PKCS#7) | tag (32)
# tag = HMAC-SHA256(mac_key, version | IV | ciphertext | aad | len(aad) as 4 bytes)
# enc_key | mac_key = HKDF-SHA256(key, info="cfgbox sealed box v1"), 32 bytes each.
#
# The same bytes can be made and read in one piece (SealKey.seal/open, for small secrets) or as a
# stream through a few hundred bytes of RAM (SealWriter/SealReader, for configs): the tag covers
# the ciphertext as it goes by and the aad after it, so neither end holds the whole box.
import hashlib
import os

import cryptolib

from shared.ct import equal
from shared.hkdf import hkdf
from shared.mac import Hmac, hmac_parts

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


class SealWriter:
    """Seal a stream: ``write`` plaintext in pieces of any size, then ``close``; the box goes out
    through ``out(bytes-like)`` in pieces of at most ``chunk`` bytes (a view of a reused buffer:
    ``out`` must consume it before returning)."""

    def __init__(self, key, aad, out, chunk=256, iv=None):
        self._k = key
        self._aad = aad
        self._out = out
        iv = iv or os.urandom(_IV)
        head = bytes((VERSION,)) + iv
        self._aes = cryptolib.aes(key._enc, _CBC, iv)
        self._mac = Hmac(hashlib.sha256, key._mac)
        self._mac.update(head)
        out(head)
        self._buf = bytearray(chunk - chunk % 16)
        self._n = 0
        self.length = len(head)  # bytes sent so far

    def _flush(self, n):
        b = memoryview(self._buf)[:n]
        self._aes.encrypt(b, b)
        self._mac.update(b)
        self._out(b)
        self.length += n
        self._n = 0

    def write(self, data):
        mv = memoryview(data)
        i = 0
        size = len(self._buf)
        while i < len(mv):
            k = min(size - self._n, len(mv) - i)
            self._buf[self._n : self._n + k] = mv[i : i + k]
            self._n += k
            i += k
            if self._n == size:
                self._flush(size)

    def close(self):
        """Pad, send the last block and the tag."""
        pad = 16 - self._n % 16
        for i in range(self._n, self._n + pad):
            self._buf[i] = pad
        self._flush(self._n + pad)
        self._mac.update(self._aad)
        self._mac.update(len(self._aad).to_bytes(4, "big"))
        tag = self._mac.digest()
        self._out(tag)
        self.length += _TAG


class SealReader:
    """Open a sealed stream read through ``src(buf) -> n`` (0 at the end), as ``readinto`` gives
    plaintext. Nothing it gives may be used before ``verify()`` has passed at the end: a reader
    of untrusted input copies it somewhere it can throw away (the client's temporary file)."""

    def __init__(self, key, aad, src, chunk=256):
        self._src = src
        self._aad = aad
        size = chunk - chunk % 16
        self._ct = bytearray(size + 16 + _TAG)  # ciphertext not yet decrypted, and the tail
        self._n = 0
        self._eof = False
        self._pt = bytearray(size)
        self._lo = self._hi = 0
        self._bad = False
        self._done = False
        head = bytearray(1 + _IV)
        got = 0
        while got < len(head):
            k = src(memoryview(head)[got:])
            if not k:
                raise SealError("sealed box length")
            got += k
        if head[0] != VERSION:
            raise SealError("sealed box version")
        self._aes = cryptolib.aes(key._enc, _CBC, bytes(head[1:]))
        self._mac = Hmac(hashlib.sha256, key._mac)
        self._mac.update(head)

    def _fill(self):
        mv = memoryview(self._ct)
        while self._n < len(self._ct) and not self._eof:
            k = self._src(mv[self._n :])
            if k:
                self._n += k
            else:
                self._eof = True

    def _decrypt(self):
        """Decrypt what can be known not to be the tag into the plaintext buffer."""
        self._fill()
        keep = _TAG if self._eof else _TAG + 16  # the last block is known only at the end
        n = min(self._n - keep, len(self._pt))
        n -= n % 16
        if n <= 0:
            if self._eof:
                if self._n != _TAG:
                    raise SealError("sealed box length")
                self._done = True
            return
        ct = memoryview(self._ct)[:n]
        self._mac.update(ct)
        self._aes.decrypt(ct, self._pt)
        self._ct[: self._n - n] = memoryview(self._ct)[n : self._n]
        self._n -= n
        self._lo, self._hi = 0, n
        if self._eof and self._n == _TAG:  # that was the last block: drop the padding
            pad = self._pt[n - 1]
            if not 1 <= pad <= 16 or pad > n:
                self._bad = True
                pad = 0
            else:
                for i in range(n - pad, n):
                    self._bad |= self._pt[i] != pad
            self._hi = n - pad

    def readinto(self, buf):
        """Up to len(buf) more bytes of plaintext; 0 at the end."""
        while self._lo == self._hi:
            if self._done:
                return 0
            self._decrypt()
        k = min(len(buf), self._hi - self._lo)
        buf[:k] = memoryview(self._pt)[self._lo : self._lo + k]
        self._lo += k
        return k

    def verify(self):
        """Read to the end and check the tag; raises SealError for any tampering or truncation."""
        while not self._done:
            self._lo = self._hi
            self._decrypt()
        self._mac.update(self._aad)
        self._mac.update(len(self._aad).to_bytes(4, "big"))
        if not equal(self._mac.digest(), memoryview(self._ct)[:_TAG]) or self._bad:
            raise SealError("sealed box authentication")
