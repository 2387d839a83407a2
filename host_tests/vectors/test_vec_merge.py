# Published vectors for the box's defaults/overrides merge: JSON Merge Patch, RFC 7386 appendix A.
import json
import unittest

from configurator_fw.store import merge

# (original, patch, result) exactly as printed in RFC 7386 appendix A
RFC7386 = [
    ('{"a":"b"}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'),
    ('{"a":"b"}', '{"a":null}', "{}"),
    ('{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'),
    ('{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'),
    ('{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'),
    ('{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'),
    ('["a","b"]', '["c","d"]', '["c","d"]'),
    ('{"a":"b"}', '["c"]', '["c"]'),
    ('{"a":"foo"}', "null", "null"),
    ('{"a":"foo"}', '"bar"', '"bar"'),
    ('{"e":null}', '{"a":1}', '{"e":null,"a":1}'),
    ("[1,2]", '{"a":"b","c":null}', '{"a":"b"}'),
    ("{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'),
]


class TestMergePatch(unittest.TestCase):
    def test_rfc7386_appendix_a(self):
        for original, patch, want in RFC7386:
            got = merge(json.loads(original), json.loads(patch))
            self.assertEqual(got, json.loads(want))

    def test_inputs_left_alone(self):
        d = {"mqtt": {"host": "h", "port": 1883}, "ntp": "pool"}
        o = {"mqtt": {"port": None, "user": "u"}}
        before = json.dumps(d), json.dumps(o)
        self.assertEqual(merge(d, o), {"mqtt": {"host": "h", "user": "u"}, "ntp": "pool"})
        self.assertEqual((json.dumps(d), json.dumps(o)), before)
