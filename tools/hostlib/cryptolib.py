# Host side only — never copied to a board. MicroPython's cryptolib for CPython, backed by
# the `cryptography` package (no home-made AES), with the ESP32 port's surface: aes(key, mode,
# iv) with mode 1 (ECB) or 2 (CBC) only, encrypt/decrypt(in[, out]) on multiples of 16 bytes.
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class aes:  # noqa: N801 - the MicroPython name
    def __init__(self, key, mode, iv=None):
        if len(key) not in (16, 32):
            raise ValueError("key")
        if mode == 1:
            m = modes.ECB()  # noqa: S305 - the MicroPython API offers ECB (mode 1)
        elif mode == 2:
            m = modes.CBC(bytes(iv) if iv is not None else bytes(16))
        else:
            raise ValueError("mode")
        self._cipher = Cipher(algorithms.AES(bytes(key)), m)
        self._enc = None
        self._dec = None

    def _run(self, ctx, data, out):
        if len(data) % 16:
            raise ValueError("blksize")
        res = ctx.update(bytes(data))
        if out is None:
            return res
        out[: len(res)] = res
        return None

    def encrypt(self, data, out=None):
        if self._dec is not None:
            raise OSError("cryptolib: encrypt after decrypt")
        self._enc = self._enc or self._cipher.encryptor()
        return self._run(self._enc, data, out)

    def decrypt(self, data, out=None):
        if self._enc is not None:
            raise OSError("cryptolib: decrypt after encrypt")
        self._dec = self._dec or self._cipher.decryptor()
        return self._run(self._dec, data, out)
