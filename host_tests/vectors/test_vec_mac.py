# Published vectors for HMAC-SHA1 (RFC 2202), HMAC-SHA256 (RFC 4231) and constant-time compare.
# Plain unittest: run by CPython (pytest) and by the built MicroPython (host_tests/upy/run.py).
import unittest

from shared.ct import equal
from shared.mac import hmac_sha1, hmac_sha256

H = bytes.fromhex
LONG6 = b"Test Using Larger Than Block-Size Key - Hash Key First"
KEY25 = bytes(range(1, 26))

RFC2202 = [
    (b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (b"Jefe", b"what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    (b"\xaa" * 20, b"\xdd" * 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
    (KEY25, b"\xcd" * 50, "4c9007f4026250c6bc8414f9bf50c86c2d7235da"),
    (b"\x0c" * 20, b"Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
    (b"\xaa" * 80, LONG6, "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
    (b"\xaa" * 80, b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
     "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"),
]

RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (KEY25, b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    # test case 5 publishes only the first 128 bits
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, LONG6,
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data."
     b" The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


class TestHmac(unittest.TestCase):
    def test_rfc2202_hmac_sha1(self):
        for key, msg, want in RFC2202:
            self.assertEqual(hmac_sha1(key, msg), H(want))

    def test_rfc4231_hmac_sha256(self):
        for key, msg, want in RFC4231:
            got = hmac_sha256(key, msg)
            self.assertEqual(got[: len(want) // 2], H(want))


class TestConstantTimeEqual(unittest.TestCase):
    def test_equal(self):
        self.assertTrue(equal(b"", b""))
        self.assertTrue(equal(b"abc", bytearray(b"abc")))
        self.assertTrue(equal(memoryview(b"xabc")[1:], b"abc"))
        self.assertTrue(equal("123456", b"123456"))

    def test_unequal(self):
        self.assertFalse(equal(b"abc", b"abd"))
        self.assertFalse(equal(b"abc", b"xbc"))
        self.assertFalse(equal(b"abc", b"ab"))
        self.assertFalse(equal(b"", b"a"))
        for i in range(32):
            b = bytearray(32)
            b[i] = 1
            self.assertFalse(equal(bytes(32), b))
