# The application's config reader's stream decoders, on both interpreters: a JSON string value
# decoded to its UTF-8 as it streams (escapes, surrogate pairs, split anywhere by the reader's
# buffer), a list's items parsed one by one (brackets, commas and quotes inside strings), and
# bytes() filled from a sized iterable to exactly the value.
import json
import unittest

from client_fw.appconfig import _chars, _ints, _Sized, _split_list
from shared.records import OBJECT, VALUE, RecordReader, locate
from streams import source

STRINGS = ("", "plain", "line\nnext\ttab \"q\" \\ / \b\f\r", "caf\u00e9 \u20ac \U0001f600",
           "-----BEGIN X-----\n" + "A" * 64 + "\n-----END X-----\n")


def header(kind, path, vlen):
    return bytes((kind, len(path))) + path + vlen.to_bytes(3, "big")


def value_record(path, value):
    """The record of one JSON value at ``path`` (a list of keys), its objects' records first:
    the stream a config of just that value gives (docs/PROTOCOL.md s.3)."""
    out = b""
    for i in range(1, len(path)):
        out += header(OBJECT, "\x00".join(path[:i]).encode(), 0)
    text = json.dumps(value).encode()
    return out + header(VALUE, "\x00".join(path).encode(), len(text)) + text


def value_stream(data, keys, buf=16, step=3):
    reader = RecordReader(source(data, step), buf)
    kind, _ = locate(reader, keys)
    return kind, _ints(reader)


class TestStrings(unittest.TestCase):
    def test_strings_decode_as_they_stream(self):
        for v in STRINGS:
            data = value_record(["k", "v"], v)
            for buf in (16, 64, 320):
                kind, src = value_stream(data, ["k", "v"], buf)
                self.assertEqual(kind, VALUE)
                self.assertEqual(bytes(_chars(src)), v.encode())

    def test_escaped_text_as_cpython_writes_it(self):
        # \u escapes (a BMP character and a surrogate pair) and "\/", whatever json.dumps did
        text = b'"caf\\u00e9 \\ud83d\\ude00 a\\/b \\u20ac"'
        data = header(VALUE, b"v", len(text)) + text
        _, src = value_stream(data, ["v"])
        self.assertEqual(bytes(_chars(src)), "caf\u00e9 \U0001f600 a/b \u20ac".encode())

    def test_a_non_string_is_refused(self):
        for v in (5, [1], True, None):
            _, src = value_stream(value_record(["n"], v), ["n"])
            self.assertRaises(TypeError, lambda s=src: bytes(_chars(s)))

    def test_sized_fill_is_exact(self):
        v = STRINGS[-1] * 20
        data = value_record(["ca"], v)
        n = sum(1 for _ in _chars(value_stream(data, ["ca"])[1]))
        self.assertEqual(n, len(v.encode()))
        got = bytes(_Sized(n + 1, lambda: _chars(value_stream(data, ["ca"])[1])))
        self.assertEqual(got, v.encode())


class TestLists(unittest.TestCase):
    def test_items_one_by_one(self):
        lists = ([], [1], [{"ssid": "a,b]", "password": "x\"}y"}, {"ssid": "[c", "n": [1, [2]]}],
                 ["s", 2.5, None, True, {"a": {"b": []}}, "\\", "q\"", "é"])
        for items in lists:
            data = value_record(["wifi"], items)
            for buf in (16, 320):
                _, src = value_stream(data, ["wifi"], buf)
                self.assertEqual(list(_split_list(src)), items)

    def test_whitespace_between_items(self):
        text = b'[ {"a": 1} ,\n 2 , "x y" ]'
        data = header(VALUE, b"l", len(text)) + text
        self.assertEqual(list(_split_list(value_stream(data, ["l"])[1])),
                         json.loads(text))

    def test_a_non_list_is_refused(self):
        _, src = value_stream(value_record(["n"], "text"), ["n"])
        self.assertRaises(TypeError, lambda: list(_split_list(src)))


if __name__ == "__main__":
    unittest.main()
