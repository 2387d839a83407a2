# Published vectors for HKDF-SHA256 (RFC 5869 A.1-A.3) and PBKDF2-HMAC-SHA256 (RFC 7914 s.11).
import unittest

from shared import hkdf
from shared.pbkdf2 import pbkdf2_sha256

H = bytes.fromhex

RFC5869 = [
    (b"\x0b" * 22, bytes(range(0x0D)), bytes(range(0xF0, 0xFA)), 42,
     "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
    (bytes(range(0x50)), bytes(range(0x60, 0xB0)), bytes(range(0xB0, 0x100)), 82,
     "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
     "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
     "cc30c58179ec3e87c14c01d5c1f3434f1d87"),
    (b"\x0b" * 22, b"", b"", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
]


class TestHkdf(unittest.TestCase):
    def test_rfc5869(self):
        for ikm, salt, info, n, prk, okm in RFC5869:
            self.assertEqual(hkdf.extract(salt, ikm), H(prk))
            self.assertEqual(hkdf.expand(H(prk), info, n), H(okm))
            self.assertEqual(hkdf.hkdf(ikm, salt, info, n), H(okm))

    def test_length_limits(self):
        self.assertEqual(len(hkdf.hkdf(b"k", length=255 * 32)), 255 * 32)
        self.assertRaises(ValueError, hkdf.hkdf, b"k", b"", b"", 255 * 32 + 1)
        self.assertRaises(ValueError, hkdf.hkdf, b"k", b"", b"", 0)


class TestPbkdf2(unittest.TestCase):
    def test_rfc7914_c1(self):
        self.assertEqual(
            pbkdf2_sha256(b"passwd", b"salt", 1, 64),
            H("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
              "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"))

    def test_rfc7914_c80000(self):
        self.assertEqual(
            pbkdf2_sha256(b"Password", b"NaCl", 80000, 64),
            H("4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
              "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"))

    def test_bad_parameters(self):
        self.assertRaises(ValueError, pbkdf2_sha256, b"p", b"s", 0)
