# The box's HTTP surface against bad and replayed input: a small JSON 4xx, never a traceback or
# 500, and no state change. The box runs from its .mpy bundle under MicroPython.
import http.client
import json

import pytest

from fleet import Fleet


@pytest.fixture
def box(tmp_path):
    f = Fleet(tmp_path)
    f.enroll("sensor-1")
    f.start_box()
    yield f
    f.stop_box()


def req(port, method, path, body=b"", headers=None):
    c = http.client.HTTPConnection("127.0.4.1", port, timeout=10)
    c.request(method, path, body, headers or {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, r


@pytest.mark.parametrize("method,path,body,status", [
    ("POST", "/api/v2/hello", b"{not json", 400),
    ("POST", "/api/v2/hello", b"[1, 2]", 400),
    ("POST", "/api/v2/hello", b'{"v": 2, "dev": "sensor-1", "cn": "00"}', 400),
    ("POST", "/api/v2/hello", b'{"v": 2, "dev": "../etc", "cn": "' + b"0" * 32 + b'"}', 400),
    ("POST", "/api/v2/hello", b'{"v": 2, "dev": "sensor-1", "cn": "zz"}', 400),
    ("POST", "/api/v2/hello", b'{"v": 2, "a": [[[[[[1]]]]]]}', 400),
    ("POST", "/api/v2/hello", b"x" * 4096, 413),
    ("GET", "/api/v2/hello", b"", 405),
    ("POST", "/api/v2/nothing", b"{}", 404),
    ("POST", "/api/v2/auth", b'{"v": 2, "dev": "sensor-1", "cn": "' + b"0" * 32
     + b'", "sn": "' + b"1" * 32 + b'", "dp": "00"}', 401),
    ("POST", "/api/v2/config", b'{"v": 2, "sid": "' + b"0" * 32 + b'", "have": 0, "m": ""}', 401),
    ("POST", "/api/v2/ack", b'{"v": 2, "sid": "' + b"0" * 32 + b'", "ver": 1, "st": "{}", '
     b'"m": ""}', 401),
])
def test_bad_input_gets_small_json_4xx(box, method, path, body, status):
    got, data, _ = req(box.port, method, path, body)
    assert got == status, data
    assert b"Traceback" not in data and len(data) < 200
    assert "error" in json.loads(data)
    assert "Traceback" not in box.box_log_text()


def test_unknown_device_answered_like_a_known_one(box):
    cn = "ab" * 16
    _, known, _ = req(box.port, "POST", "/api/v2/hello",
                      json.dumps({"v": 2, "dev": "sensor-1", "cn": cn}).encode())
    _, unknown, _ = req(box.port, "POST", "/api/v2/hello",
                        json.dumps({"v": 2, "dev": "sensor-99", "cn": cn}).encode())
    k, u = json.loads(known), json.loads(unknown)
    assert set(k) == set(u) and len(k["bp"]) == len(u["bp"]) == 64


def test_replayed_auth_config_ack_are_refused(box, tmp_path):
    # run a real exchange while recording its requests, then replay each one
    box.devrun("sensor-1", """
import client_fw.provision as p
log = open('replay.jsonl', 'w')
_post = p.post
def rec(host, port, path, obj, src=None, **kw):
    import json
    log.write(json.dumps([path, obj]) + '\\n')
    return _post(host, port, path, obj, src, **kw)
p.post = rec
from shared.board import Board
print(p.provision(Board(), 0))
log.close()
""")
    lines = box.fs("sensor-1").read("replay.jsonl").decode().splitlines()
    sent = [json.loads(x) for x in lines]
    assert [p for p, _ in sent] == ["/api/v2/hello", "/api/v2/auth", "/api/v2/config",
                                    "/api/v2/ack"]
    ack_before = box.devices()["sensor-1"]["ack"]
    for path, obj in sent[1:]:
        status, data, _ = req(box.port, "POST", path, json.dumps(obj).encode())
        assert status == 401, (path, data)
    # a replayed hello gets a fresh server nonce, not the recorded one
    status, data, _ = req(box.port, "POST", sent[0][0], json.dumps(sent[0][1]).encode())
    assert status == 200
    assert box.devices()["sensor-1"]["ack"] == ack_before
