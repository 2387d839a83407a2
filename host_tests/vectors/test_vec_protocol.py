# Known-answer vectors of protocol v2 (docs/PROTOCOL.md appendix A), run on both interpreters.
# The values were computed by host_tests/oracle/protocol_v2.py, an implementation written from
# the document alone (test_protocol_oracle.py checks they still agree).
import unittest

from shared import protocol
from shared.sealedbox import SealKey, SealWriter

from kat_inputs import BOX, CN, CONFIG, DEV, IV, MK, NOW, SALT, SID, SN, ST, STEP, T, UID

H = bytes.fromhex
V = {
    'DK': '3fb45fdced14190197e2ea95e81f110b2455ed12a889ad78321cd7be24d808e7',
    'decoy': 'd4ef956f681a8993d6bac63b0fa530142c62dc4bc4dc800529750c5c3b295d58',
    'K': '128b1d69c62c2b7ad84f151e61d48a5bcded3952f33eb1642c9b151ad888d0e9',
    'code': '323839373832',
    'bp': 'e87dd383dca9471794cd74bd1f243f548ac50977c11baf522124d70376ee82b6',
    'SK': '56a96fa2527f1435f3fe176c8045b56156a22a7bdf15a37840a0cac28affcd69',
    'dp': '39cfd63c61bd8c292de813275f171325f1abdd43d8538b7f9c96e815300ee2ca',
    'ap': 'e56497b08968ae8d2b3387a2068c32e7e6b436f6a45dfe352d8b66e368c2b3bb',
    'm_config': '68501cc41baaf853b77f4d0e14b9683c56d1f06c56bbb4808621ffdaa4d56c4b',
    'm_unchanged': 'fcad1df62095b8a51da625588d29be9a938f9541f9b69ca2ce9391c37b608864',
    'm_ack': 'e357d3108eab47a41c93af34c113db2fe2b241c6506ccf3667e5149490d64943',
    'm_ack_ok': '729d5afb25b6cb6be6a3158638e3dc2fc31d4f089a5433d63636349363c7d49b',
    'cfg_stream': (
        '0000002a01101112131415161718191a1b1c1d1e1fb750e01527d79ab63cd40fbd134e648848ba84'
        '91e6f4153cafbf9f379533e4f6f274659fad6f7dce51e4a39d78ddca3bd4bd6e0395a7cccd7aef92'
        '9a39b41e9c2b5f4f115db23bf445d8f7d42fd32db9'),
    'KS': '920d1bf8293f1162da04827358ba9818951e88a2c1cd4a272764542085acabf5',
}


class TestProtocolV2(unittest.TestCase):
    def setUp(self):
        self.dk = protocol.device_key(MK, DEV)
        self.k = protocol.long_term_key(self.dk, T)
        self.code = protocol.code(T, STEP)
        self.sk = protocol.session_key(self.k, CN, SN, BOX, DEV, STEP, self.code)

    def test_long_term_keys(self):
        self.assertEqual(self.dk, H(V["DK"]))
        self.assertEqual(protocol.decoy_key(MK, DEV), H(V["decoy"]))
        self.assertEqual(self.k, H(V["K"]))
        self.assertEqual(protocol.storage_key(self.k, UID + SALT), H(V["KS"]))

    def test_code_and_session_key(self):
        self.assertEqual(self.code.encode(), H(V["code"]))
        self.assertEqual(self.sk, H(V["SK"]))

    def test_proofs_and_macs(self):
        sk = self.sk
        self.assertEqual(protocol.mac(self.k, "cfgbox/2 box", BOX, DEV, CN, SN, NOW), H(V["bp"]))
        self.assertEqual(protocol.mac(sk, "cfgbox/2 dev", BOX, DEV, CN, SN, STEP), H(V["dp"]))
        self.assertEqual(protocol.mac(sk, "cfgbox/2 auth-ok", SID, DEV, STEP), H(V["ap"]))
        self.assertEqual(protocol.mac(sk, "cfgbox/2 config", SID, 41), H(V["m_config"]))
        self.assertEqual(protocol.mac(sk, "cfgbox/2 unchanged", SID, 41), H(V["m_unchanged"]))
        self.assertEqual(protocol.mac(sk, "cfgbox/2 ack", SID, 42, ST), H(V["m_ack"]))
        self.assertEqual(protocol.mac(sk, "cfgbox/2 ack-ok", SID, 42), H(V["m_ack_ok"]))
        self.assertTrue(protocol.mac_ok(sk, V["m_ack_ok"], "cfgbox/2 ack-ok", SID, 42))

    def test_sealed_config_stream(self):
        out = []
        w = SealWriter(SealKey(self.sk), protocol.tr("cfgbox/2 cfg", SID, DEV, 42), out.append,
                       iv=IV)
        w.write(CONFIG[:7])
        w.write(CONFIG[7:])
        w.close()
        self.assertEqual((42).to_bytes(4, "big") + b"".join(bytes(x) for x in out),
                         H(V["cfg_stream"]))
        opened = SealKey(self.sk).open(H(V["cfg_stream"])[4:],
                                       protocol.tr("cfgbox/2 cfg", SID, DEV, 42))
        self.assertEqual(bytes(opened), CONFIG)

    def test_a_key_needs_both_factors(self):
        other_t = bytes(20)
        self.assertNotEqual(protocol.long_term_key(self.dk, other_t), self.k)
        self.assertNotEqual(protocol.long_term_key(bytes(32), T), self.k)
        self.assertNotEqual(protocol.device_key(MK, "sensor-043"), self.dk)


if __name__ == "__main__":
    unittest.main()
