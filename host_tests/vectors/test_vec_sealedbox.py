# The sealed box on both interpreters: round trip, and every kind of damage raises SealError.
import unittest

from shared.sealedbox import OVERHEAD_MAX, SealError, SealKey


def seal(key, pt, aad=b""):
    return SealKey(key).seal(pt, aad)


def unseal(key, box, aad=b""):
    return SealKey(key).open(box, aad)

KEY = bytes(range(32))


class TestSealedBox(unittest.TestCase):
    def test_round_trip_sizes(self):
        k = SealKey(KEY)
        for n in (0, 1, 15, 16, 17, 100, 16384):
            # made at its final size: a bytes() grown from a generator fragments a board's heap
            pt = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
            box = k.seal(pt, b"aad")
            self.assertTrue(len(box) <= n + OVERHEAD_MAX)
            self.assertTrue(k.open(box, b"aad") == pt)
            del box  # 16 KB at a time: this runs within the board's heap too
            self.assertTrue(unseal(KEY, seal(KEY, pt)) == pt)

    def test_fresh_iv_each_time(self):
        self.assertNotEqual(seal(KEY, b"same"), seal(KEY, b"same"))

    def test_every_bit_flip_rejected(self):
        box = seal(KEY, b"config payload, 29 bytes long")
        for i in range(len(box)):
            for bit in range(8):
                bad = bytearray(box)
                bad[i] ^= 1 << bit
                self.assertRaises(SealError, unseal, KEY, bad)

    def test_every_truncation_rejected(self):
        box = seal(KEY, b"x" * 40)
        for n in range(len(box)):
            self.assertRaises(SealError, unseal, KEY, box[:n])
        self.assertRaises(SealError, unseal, KEY, box + b"\0" * 16)

    def test_wrong_key_wrong_aad_unknown_version(self):
        box = seal(KEY, b"secret", b"dev-1")
        self.assertRaises(SealError, unseal, bytes(32), box, b"dev-1")
        self.assertRaises(SealError, unseal, KEY, box, b"dev-2")
        self.assertRaises(SealError, unseal, KEY, b"\x02" + box[1:], b"dev-1")

    def test_seal_error_is_value_error(self):
        self.assertTrue(issubclass(SealError, ValueError))
