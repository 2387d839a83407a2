# The box's HTTP surface against bad and replayed input: a small JSON 4xx, never a traceback or
# 500, and no state change. The box runs from its .mpy bundle under MicroPython.
import http.client
import socket
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
    c = http.client.HTTPConnection("127.0.4.1", port, timeout=60)
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
    ("POST", "/api/v2/hello", b'{"v": true, "dev": "sensor-1", "cn": "' + b"0" * 32 + b'"}', 400),
    ("POST", "/api/v2/auth", b'{"v": 2, "dev": "sensor-1", "cn": "' + b"0" * 32
     + b'", "sn": "' + b"1" * 32 + b'", "c": 1, "dp": "00"}', 400),
    ("POST", "/api/v2/auth", b'{"v": 2, "dev": "sensor-1", "cn": "' + b"0" * 32
     + b'", "sn": "' + b"1" * 32 + b'", "c": 1, "dp": "' + b"0" * 64 + b'"}', 401),
    ("POST", "/api/v2/config", b'{"v": 2, "sid": "' + b"0" * 32 + b'", "have": 0, "m": ""}', 400),
    ("POST", "/api/v2/config", b'{"v": 2, "sid": "' + b"0" * 32 + b'", "have": 0, "m": "'
     + b"0" * 64 + b'"}', 401),
    ("POST", "/api/v2/ack", b'{"v": 2, "sid": "' + b"0" * 32 + b'", "ver": 1, "st": "{}", '
     b'"m": "' + b"0" * 64 + b'"}', 401),
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


# -- the transport under attack (configurator_fw/server.py), against the real box process


def raw(port, data, read=True, timeout=60):
    """Send raw bytes; the whole answer (until the box closes), or the open socket."""
    s = socket.create_connection(("127.0.4.1", port), timeout)
    try:
        s.sendall(data)
    except ConnectionResetError:  # the box refused before the sender was done
        s.close()
        return b"RESET"
    if not read:
        return s
    out = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except ConnectionResetError:
        # the box answered and closed with the rest of an oversize request unread: TCP resets,
        # and the answer may be lost on the way (a real HTTP server does the same)
        out = out or b"RESET"
    finally:
        s.close()
    return out


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None


def _alive(box):
    cn = "ab" * 16
    s, data, _ = req(box.port, "POST", "/api/v2/hello",
                     json.dumps({"v": 2, "dev": "sensor-1", "cn": cn}).encode())
    return s == 200


HELLO_BODY = b'{"v": 2, "dev": "sensor-1", "cn": "' + b"ab" * 16 + b'"}'


@pytest.mark.parametrize("name,data,status", [
    ("1 MB header line", b"POST /api/v2/hello HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20), 413),
    ("a 4 KB header line", b"POST /api/v2/hello HTTP/1.1\r\nX-Big: " + b"a" * 4096, 413),
    ("100 headers of 100 B", b"POST /api/v2/hello HTTP/1.1\r\n"
     + b"".join(b"X-H%03d: %s\r\n" % (i, b"b" * 90) for i in range(100)) + b"\r\n", 413),
    ("a 600 B request line", b"POST /" + b"c" * 600 + b" HTTP/1.1\r\n\r\n", 413),
    ("Content-Length -1", b"POST /api/v2/hello HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    ("Content-Length 4 GB", b"POST /api/v2/hello HTTP/1.1\r\nContent-Length: 4294967295"
     b"\r\n\r\n", 413),
    ("Content-Length junk", b"POST /api/v2/hello HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400),
    ("no Content-Length", b"POST /api/v2/hello HTTP/1.1\r\nHost: x\r\n\r\n" + HELLO_BODY, 411),
    ("chunked", b"POST /api/v2/hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n", 400),
    ("not HTTP", b"HELLO THERE\r\n\r\n", 400),
    ("bad header", b"POST /api/v2/hello HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    ("deep JSON", b"POST /api/v2/hello HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"
     + b"[" * 500 + b"]" * 500, 400),
])
def test_caps_act_before_buffering_and_the_box_stays_up(box, name, data, status):
    answer = raw(box.port, data)
    if answer != b"RESET" or len(data) < 64 * 1024:  # only a huge request may be cut short
        assert status_of(answer) == status, (name, answer[:200])
        assert len(answer) < 400 and b"error" in answer
    assert _alive(box), name
    log = box.box_log_text()
    assert "Traceback" not in log and "MemoryError" not in log, log[-2000:]


def test_head_and_a_lowercase_method_get_405_not_the_page(box):
    """s.5: HEAD is a wrong method (405 with Allow), and methods are case-sensitive (RFC 9110):
    microdot alone answers both as GET (200 with the page)."""
    for line in (b"HEAD /admin HTTP/1.1", b"get /admin HTTP/1.1",
                 b"Get /admin/api/session HTTP/1.1", b"post /api/v2/hello HTTP/1.1"):
        answer = raw(box.port, line + b"\r\nContent-Length: 0\r\n\r\n")
        assert status_of(answer) == 405, (line, answer[:300])
        assert b"\r\nAllow: " in answer and b"<html" not in answer.lower(), answer[:300]
    status, _, _ = req(box.port, "GET", "/admin")
    assert status == 200  # the right method still works


def test_every_json_answer_says_nosniff(box):
    """JSON answers of both APIs, errors included, carry X-Content-Type-Options: nosniff, so a
    browser never sniffs one into HTML."""
    for method, path, body in (("GET", "/admin/api/session", b""),
                               ("POST", "/admin/api/login", b"{not json"),
                               ("POST", "/api/v2/hello", b"{not json"),
                               ("GET", "/nowhere", b"")):
        status, _, r = req(box.port, method, path, body)
        assert r.getheader("Content-Type") == "application/json", (path, status)
        assert r.getheader("X-Content-Type-Options") == "nosniff", (path, status)
    answer = raw(box.port, b"POST /api/v2/hello HTTP/1.1\r\n" + b"X: y\r\n" * 30 + b"\r\n")
    assert status_of(answer) in (400, 413) and b"X-Content-Type-Options: nosniff" in answer


def test_options_and_other_methods_get_405_with_allow(box):
    for method in ("OPTIONS", "GET", "PUT", "HEAD"):
        answer = raw(box.port, b"%s /api/v2/auth HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                     % method.encode())
        assert status_of(answer) == 405, (method, answer)
        assert b"\r\nAllow: POST\r\n" in answer, answer


def test_a_silent_half_request_is_dropped_after_the_deadline(box):
    s = raw(box.port, b"POST /api/v2/hello HTTP/1.1\r\nContent-Le", read=False, timeout=30)
    s.settimeout(0.5)
    with pytest.raises(socket.timeout):
        s.recv(1)  # the deadline has not come: the box waits
    box.world.advance(5)  # past the 4 s request deadline, on the emulated clock
    s.settimeout(120)  # a hang guard only
    assert s.recv(1) == b""  # closed by the box, nothing answered
    s.close()
    assert _alive(box)


def test_idle_connections_never_starve_a_device(box):
    """80 idle connections from many stations: the box holds at most its budget, a device's
    request still gets through, and when the idle ones time out the box is as before."""
    idle = []
    for i in range(80):
        s = socket.socket()
        s.settimeout(10)
        s.bind(("127.0.5.%d" % (1 + i % 40), 0))
        try:
            s.connect(("127.0.4.1", box.port))
        except OSError:
            s.close()
            continue
        idle.append(s)
    assert _alive(box)  # the oldest idle connection gave way
    box.world.advance(5)
    assert _alive(box)
    for s in idle:
        s.close()
    log = box.box_log_text()
    assert "Traceback" not in log and "MemoryError" not in log, log[-2000:]


SUPERVISED_MAIN = b"""
# main.py for this test: the server's first run dies of memory, as a flood once made it
from configurator_fw import box, server
calls = [0]
_serve = server.Server.serve


async def serve(self, host, port):
    calls[0] += 1
    if calls[0] == 1:
        raise MemoryError("memory allocation failed, allocating 4096 bytes")
    await _serve(self, host, port)


server.Server.serve = serve
box.run()
"""


def test_the_supervisor_starts_the_server_again_whatever_ended_it(tmp_path):
    f = Fleet(tmp_path)
    f.enroll("sensor-1")
    f.fs(f.box).write("main.py", SUPERVISED_MAIN)
    f.start_box()
    try:
        assert _alive(f)
        log = f.box_log_text()
        assert "server stopped (MemoryError: memory allocation failed" in log, log
        assert "starting again" in log and "Traceback" not in log
    finally:
        f.stop_box()


def _head(n, path="/admin/api/session"):
    """A GET head of about ``n`` bytes (padding in one header line of at most 500)."""
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.4.1"]
    while sum(len(x) + 2 for x in lines) < n - 520:
        lines.append("X-Pad-%d: %s" % (len(lines), "p" * 480))
    pad = n - sum(len(x) + 2 for x in lines) - 4 - len("X-Last: ")
    lines.append("X-Last: " + "q" * max(0, pad))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_one_connection_at_a_time_may_send_a_head_past_1_kb(box):
    """A browser's head (headless Chromium's: 0.57-0.7 KB) is served, up to 2 KB; past 1 KB
    only one connection at a time may grow its buffer, so a station's idle large heads cannot
    take 7 x 2 KB of heap."""
    status, data, _ = req(box.port, "GET", "/admin/api/session", headers={
        "X-Pad": "p" * 400, "X-Pad2": "p" * 400, "X-Pad3": "p" * 400})
    assert status == 200, data  # a 1.3 KB head alone: served
    held = socket.create_connection(("127.0.4.1", box.port), 5)
    held.sendall(_head(1900)[:1500])  # past 1 KB and not finished: it holds the slot
    try:
        import time

        time.sleep(0.3)  # host time: the box reads the first one's 1.5 KB
        other = socket.create_connection(("127.0.4.1", box.port), 5)
        other.sendall(_head(1500))
        answer = other.recv(4096)
        other.close()
        assert answer.startswith(b"HTTP/1.0 413"), answer[:80]
        held.sendall(_head(1900)[1500:])
        answer = held.recv(4096)
        assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), \
            answer[:80]
    finally:
        held.close()
    assert req(box.port, "GET", "/admin/api/session", headers={"X-Pad": "p" * 480,
                                                                 "X-Pad2": "p" * 480})[0] == 200
    assert req(box.port, "GET", "/admin/api/session", headers={
        "X-Pad%d" % i: "p" * 480 for i in range(5)})[0] == 413  # past 2 KB: never


FAILING_STREAM_MAIN = b"""
# main.py for this test: config streams 1 and 3 run out of memory after their head and five
# pieces, stream 2 cannot start for memory, the others are whole
from configurator_fw import api, box
calls = [0]
_stream = api.DeviceApi._stream


def stream(self, *a):
    calls[0] += 1
    n = calls[0]
    if n == 2:
        raise MemoryError("memory allocation failed, allocating 2048 bytes")
    for i, piece in enumerate(_stream(self, *a)):
        if n in (1, 3) and i == 5:
            raise MemoryError("memory allocation failed, allocating 1024 bytes")
        yield piece


api.DeviceApi._stream = stream
box.run()
"""


def test_a_stream_cut_after_its_head_is_cut_off_never_patched_and_the_device_retries(tmp_path):
    """Item 3 of "a thousand devices": an answer that fails after its head is closed without
    its last chunk (no 503 written into the 200 body); the device reports a network error, not
    a tampered payload, and keeps its config; a stream that cannot start for memory is a 503
    with Retry-After before any head; the next one is whole."""
    f = Fleet(tmp_path)
    cfg = {"wifi": [{"ssid": "plant", "password": "pw-wifi-1"}], "app": {"blob": "x" * 3000}}
    f.set_defaults(cfg)
    boot = f.enroll("sensor-1")
    f.fs(f.box).write("main.py", FAILING_STREAM_MAIN)
    f.start_box()
    try:
        from bench import HttpDevice

        assert f.check("sensor-1") == ("network error", None)  # stream 1, cut: nothing stored
        dev = HttpDevice(f.port, boot, "cfgbox-7c2a")
        # stream 2: a 503 with Retry-After, before any head
        status, out, headers = _config_answer(f, dev)
        assert (status, out["error"]) == (503, "busy") and headers["Retry-After"] == "2"
        # stream 3 as the radio carries it: head, chunks, no end
        raw = _raw_config_answer(f, dev)
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw[:100]
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head
        assert b"503" not in body and b"busy" not in body  # nothing patched in
        assert len(body) > 100 and not body.endswith(b"0\r\n\r\n")  # cut: no last chunk
        f.world.advance(30)  # the host's client used this step of the device's
        assert f.check("sensor-1") == ("ok", cfg)  # stream 4 is whole
        log = f.box_log_text()
        assert "its answer was cut off" in log and "503 before its head" in log, log[-2000:]
        assert "Traceback" not in log
    finally:
        f.stop_box()


def _session(f, dev):
    f.world.advance(30)  # a TOTP step of its own
    now = f.world.now()
    dev.hello(now)
    assert dev.auth(now)[0] == 200
    return now


def _raw_config_answer(f, dev):
    from shared import protocol

    _session(f, dev)
    body = json.dumps({"v": 2, "sid": dev.sid.hex(), "have": 0,
                       "m": protocol.mac(dev.sk, "cfgbox/2 config", dev.sid, 0).hex()}).encode()
    s = socket.create_connection(("127.0.4.1", f.port), 10)
    s.sendall(b"POST /api/v2/config HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out = b""
    while True:
        got = s.recv(4096)
        if not got:
            break
        out += got
    s.close()
    return out


def _config_answer(f, dev):
    from shared import protocol

    _session(f, dev)
    return dev.post("/api/v2/config", {"v": 2, "sid": dev.sid.hex(), "have": 0,
                                       "m": protocol.mac(dev.sk, "cfgbox/2 config", dev.sid,
                                                         0).hex()}, 0)


DROPPING_MAIN = b"""
# main.py for this test: the box's first three connections are dropped unread, as a box with
# no socket left for them does (lwIP's 10); the others are served
from configurator_fw import box, server
calls = [0]
_conn = server.Server._conn


async def conn(self, reader, writer):
    calls[0] += 1
    if calls[0] <= 3:
        await writer.wait_closed()
        return
    await _conn(self, reader, writer)


server.Server._conn = conn
box.run()
"""


def test_a_request_dropped_unread_is_sent_again_within_the_same_attempt(tmp_path):
    """Ten stations at once can find the box's sockets taken: a connection it drops before
    answering is retried by the device after a moment, within one attempt (one check)."""
    f = Fleet(tmp_path)
    f.set_defaults({"name": "dropped"})
    f.enroll("sensor-1")
    f.fs(f.box).write("main.py", DROPPING_MAIN)
    f.start_box()
    try:
        assert f.check("sensor-1", attempts=1) == ("ok", {"name": "dropped"})
    finally:
        f.stop_box()


def _hello_with(headers=b"", length=None, body=HELLO_BODY):
    n = len(body) if length is None else length
    return (b"POST /api/v2/hello HTTP/1.1\r\n" + headers
            + b"Content-Length: %d\r\n\r\n" % n + body)


def test_each_transport_cap_acts_on_its_own_at_its_boundary(box):
    """Each cap tested alone, just past and just within it, so that none hides behind a larger
    one that fires first (issue 17 item 9): the header count (20), the body's Content-Length
    (2048), the JSON depth (4), and a stranger's login body (the small cap, not the logged-in
    browser's 8 KB)."""
    from configurator_fw import app as app_mod
    from configurator_fw import server

    line = len(b"X-00: b\r\n")  # 9 B each: 31 of them far below the head cap
    short = b"".join(b"X-%02d: b\r\n" % i for i in range(40))
    within = raw(box.port, _hello_with(short[:line * (server.MAX_HEADERS - 1)]))  # + its length
    assert status_of(within) == 200, within[:200]
    for n in range(server.MAX_HEADERS, 31):  # 21 to 31 header lines with Content-Length
        answer = raw(box.port, _hello_with(short[:line * n]))
        assert status_of(answer) == 413 and b"too many header lines" in answer, (n, answer)
    # a Content-Length one past the cap is refused before a byte of the body is read
    over = raw(box.port, _hello_with(length=server.MAX_BODY + 1, body=b""))
    assert status_of(over) == 413, over[:200]
    pad = b" " * (server.MAX_BODY - len(HELLO_BODY))
    assert status_of(raw(box.port, _hello_with(body=HELLO_BODY[:-1] + pad + b"}"))) == 200
    # depth: 4 levels pass the depth check (refused later for the unknown field), 5 do not
    for depth, refused in ((app_mod.MAX_DEPTH, False), (app_mod.MAX_DEPTH + 1, True)):
        body = HELLO_BODY[:-1] + b', "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        answer = raw(box.port, _hello_with(body=body))
        assert status_of(answer) == 400 and (b"JSON too deep" in answer) == refused, answer
    # a stranger's login body: the small cap, although a logged-in browser may send 8 KB
    for n, status in ((server.MAX_BODY + 1, 413), (server.MAX_BODY, 400)):
        body = b'{"passphrase": "' + b"p" * (n - 18) + b'"}'
        assert len(body) == n
        answer = raw(box.port, b"POST /admin/api/login HTTP/1.1\r\nContent-Length: %d\r\n"
                     b"\r\n" % n + body)
        assert status_of(answer) == status, (n, answer[:200])
    assert _alive(box)
