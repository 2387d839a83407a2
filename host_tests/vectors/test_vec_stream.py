# The streamed sealed box, the config record format and the box's on-the-fly merge, on both
# interpreters: the stream is byte for byte the one-piece box, damage is caught, records have
# known bytes, and composing record streams gives RFC 7386's results (appendix A, objects only:
# a config and its overrides are objects).
import json
import unittest

from configurator_fw.compose import compose, encode, flatten
from shared.records import OBJECT, VALUE, RecordReader, locate, read_value, unflatten
from shared.sealedbox import SealError, SealKey, SealReader, SealWriter
from streams import source
from test_vec_merge import RFC7386


def find(reader, keys):
    """The value at ``keys``, found as the device's config reader finds it."""
    kind, path = locate(reader, keys)
    return read_value(reader, kind, path)

KEY = bytes(range(32))
IV = bytes(range(100, 116))
# RFC 7386 appendix A where original and patch are objects (a config and its overrides are),
# and two more: an object patch over a non-object, an empty object patch over an object
RFC7386_OBJECTS = [v for v in RFC7386 if v[0][0] == "{" and v[1][0] == "{"] + [
    ('{"a":5}', '{"a":{"b":null}}', '{"a":{}}'),
    ('{"a":{"x":1}}', '{"a":{}}', '{"a":{"x":1}}'),
]


def sealed_stream(pt, aad=b"aad", chunk=64):
    parts = []
    w = SealWriter(SealKey(KEY), aad, lambda b: parts.append(bytes(b)), chunk=chunk, iv=IV)
    for i in range(0, len(pt), 7):
        w.write(pt[i : i + 7])
    w.close()
    return b"".join(parts)


def open_stream(box, aad=b"aad", step=1 << 30):
    r = SealReader(SealKey(KEY), aad, source(box, step), chunk=48)
    out = bytearray()
    buf = bytearray(13)
    while True:
        n = r.readinto(buf)
        if not n:
            break
        out.extend(buf[:n])
    r.verify()
    return bytes(out)


def merged(d, p):
    out = []
    for _ in compose(RecordReader(source(encode(flatten(d)), 5), 40),
                     RecordReader(source(encode(flatten(p, True)), 3), 40),
                     lambda b: out.append(bytes(b))):  # a view: copy it before it is reused
        pass
    return unflatten(RecordReader(source(b"".join(out))))


class TestStream(unittest.TestCase):
    def test_stream_is_the_one_piece_box(self):
        for n in (0, 1, 15, 16, 17, 63, 64, 65, 500):
            pt = bytes(i * 7 & 0xFF for i in range(n))
            box = sealed_stream(pt)
            self.assertEqual(box, bytes(SealKey(KEY).seal(pt, b"aad", iv=IV)))
            for step in (1, 16, 1000):
                self.assertEqual(open_stream(box, step=step), pt)

    def test_every_bit_flip_and_truncation_rejected(self):
        box = sealed_stream(b"a config of some 40 bytes, give or take")
        for i in range(len(box)):
            bad = bytearray(box)
            bad[i] ^= 0x10
            self.assertRaises(SealError, open_stream, bytes(bad))
        for cut in range(len(box)):
            self.assertRaises(SealError, open_stream, box[:cut])
        self.assertRaises(SealError, open_stream, box, b"other aad")


class TestRecords(unittest.TestCase):
    def test_known_bytes(self):
        recs = flatten({"mqtt": {"port": 8883, "host": "h"}, "name": "n", "x": None})
        self.assertEqual(encode(recs).hex(),
                         "00046d717474000000"
                         "01096d71747400686f7374000003226822"
                         "01096d71747400706f727400000438383833"
                         "01046e616d65000003226e22"
                         "0101780000046e756c6c")
        self.assertEqual([(p, k) for p, k, _ in recs],
                         [(b"mqtt", OBJECT), (b"mqtt\x00host", VALUE), (b"mqtt\x00port", VALUE),
                          (b"name", VALUE), (b"x", VALUE)])

    def test_round_trip_and_find(self):
        cfg = {"wifi": [{"ssid": "a"}], "mqtt": {"tls": {"ca": "PEM", "v": 1}, "host": "h"},
               "e": {}, "z": None}
        data = encode(flatten(cfg))
        self.assertEqual(unflatten(RecordReader(source(data, 3), 16)), cfg)
        self.assertEqual(find(RecordReader(source(data, 2), 16), ["mqtt", "tls", "ca"]), "PEM")
        self.assertEqual(find(RecordReader(source(data)), ["mqtt", "tls"]), {"ca": "PEM", "v": 1})
        self.assertEqual(find(RecordReader(source(data)), ["e"]), {})
        self.assertRaises(KeyError, find, RecordReader(source(data)), ["mqtt", "port"])

    def test_compose_gives_rfc7386(self):
        for d, p, want in RFC7386_OBJECTS:
            self.assertEqual(merged(json.loads(d), json.loads(p)), json.loads(want))
