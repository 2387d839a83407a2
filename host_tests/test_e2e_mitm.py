# A neighbour in the middle: the device's traffic passes through a proxy on the emulated AP that
# alters the box's config answer (the streamed, sealed config, or a forged "unchanged"). The
# device must refuse every alteration, report "tampered payload", and keep its stored config byte
# for byte. Firmware on emulated boards, as in test_e2e.
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet import Fleet, free_port

OLD = {"mqtt": {"host": "old.example.net"}, "ntp": "pool.ntp.org"}
NEW = {"mqtt": {"host": "new.example.net"}, "ntp": "pool.ntp.org"}


def _flip(body, have):
    box = bytearray(body)
    box[len(box) // 2] ^= 0x01
    return bytes(box), "application/octet-stream"


def _truncate(body, have):
    return body[:-16], "application/octet-stream"


def _drop_the_tag(body, have):
    return body[:-32], "application/octet-stream"


def _other_version(body, have):
    ver = int.from_bytes(body[:4], "big") + 1  # the seal binds the version: it no longer opens
    return ver.to_bytes(4, "big") + body[4:], "application/octet-stream"


def _hide_the_update(body, have):
    # claim "unchanged" without the session key's MAC
    return json.dumps({"v": 2, "ver": have, "unchanged": True, "m": "00" * 32}).encode(), \
        "application/json"


class Proxy:
    def __init__(self, box_port, alter, drop_auth_answers=0, answer=None):
        """``alter`` changes a config answer; ``answer(path, status, data, ctype)`` may replace
        any answer: it returns (status, data, ctype), or None to let it through."""
        self.hits = 0
        self.drop = drop_auth_answers  # the box's answers to auth lost on the way back
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.request = body  # what the device sent, for an alterer that needs it
                c = http.client.HTTPConnection("127.0.4.1", box_port, timeout=60)
                c.request("POST", self.path, body, {"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                ctype = r.getheader("Content-Type")
                if self.path == "/api/v2/auth" and proxy.drop:
                    proxy.drop -= 1
                    self.close_connection = True  # the box accepted; the device never hears
                    return
                status = r.status
                if self.path == "/api/v2/config" and r.status == 200 and alter:
                    data, ctype = alter(data, json.loads(body)["have"])
                    proxy.hits += 1
                changed = answer and answer(self.path, status, data, ctype)
                if changed:
                    status, data, ctype = changed
                    proxy.hits += 1
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.4.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("alter", [_flip, _truncate, _drop_the_tag, _other_version,
                                   _hide_the_update])
def test_altered_config_answer_is_refused_and_old_config_kept(tmp_path, alter):
    fleet = Fleet(tmp_path)
    fleet.set_defaults(OLD)
    boot = fleet.enroll("sensor-m")
    fleet.start_box()
    proxy = Proxy(fleet.port, alter)
    try:
        assert fleet.check("sensor-m") == ("ok", OLD)
        stored = fleet.stored("sensor-m")
        fleet.set_defaults(NEW)
        # from now on the device reaches the box only through the proxy
        fleet.write_bootstrap("sensor-m", dict(boot, port=proxy.port))
        assert fleet.check("sensor-m") == ("tampered payload", OLD)
        assert proxy.hits == 1
        assert fleet.stored("sensor-m") == stored
        d = fleet.devices()["sensor-m"]
        assert d["ack"] < d["ver"]  # the box saw no acknowledgement of the new version
    finally:
        proxy.close()
        fleet.stop_box()


def test_a_lost_auth_answer_does_not_cost_the_device_a_failure(tmp_path):
    """The box accepts a step and its answer is lost: the device's retry must use the next step
    (the box takes none twice), not the same one, which would be refused and counted."""
    fleet = Fleet(tmp_path)
    fleet.set_defaults(OLD)
    boot = fleet.enroll("sensor-l")
    fleet.start_box()
    proxy = Proxy(fleet.port, lambda body, have: (body, "application/octet-stream"),
                  drop_auth_answers=1)
    try:
        fleet.write_bootstrap("sensor-l", dict(boot, port=proxy.port))
        # a retry with the same step would be refused (401, "unauthorized", not retried)
        assert fleet.check("sensor-l", attempts=2) == ("ok", OLD)
    finally:
        proxy.close()
        fleet.stop_box()


def _json_answer(path, change):
    """An alterer of the JSON answer to ``path``: ``change(obj)`` returns the new object."""
    def answer(p, status, data, ctype):
        if p != path or status != 200 or not ctype.startswith("application/json"):
            return None
        out = change(json.loads(data))
        raw = out if isinstance(out, bytes) else json.dumps(out).encode()
        return 200, raw, "application/json"
    return answer


def _flip_hex(v):
    return ("1" if v[0] != "1" else "2") + v[1:]


HOSTILE_ANSWERS = [
    # (name, alterer, the status the device must report)
    ("hello: bp altered", _json_answer("/api/v2/hello", lambda o: dict(o, bp=_flip_hex(o["bp"]))),
     "box not authentic"),
    ("hello: t of 2**64", _json_answer("/api/v2/hello", lambda o: dict(o, t=2**64)),
     "box not authentic"),
    ("hello: t ten years on", _json_answer("/api/v2/hello", lambda o: dict(o, t=o["t"] + 10 * 365
                                                                          * 86400)),
     "box not authentic"),
    ("hello: t as a string", _json_answer("/api/v2/hello", lambda o: dict(o, t=str(o["t"]))),
     "box not authentic"),
    ("hello: sn missing", _json_answer("/api/v2/hello", lambda o: {k: v for k, v in o.items()
                                                                    if k != "sn"}),
     "box not authentic"),
    ("hello: a 24 KB answer", _json_answer("/api/v2/hello", lambda o: dict(o, pad="x" * 24000)),
     "network error"),
    ("hello: a list", _json_answer("/api/v2/hello", lambda o: [o]), "network error"),
    ("hello: not JSON", _json_answer("/api/v2/hello", lambda o: b"{\xff"), "network error"),
    ("hello: deep JSON", _json_answer("/api/v2/hello", lambda o: b"[" * 500 + b"]" * 500),
     "network error"),
    ("auth: ap altered", _json_answer("/api/v2/auth", lambda o: dict(o, ap=_flip_hex(o["ap"]))),
     "box not authentic"),
    ("auth: sid not hex", _json_answer("/api/v2/auth", lambda o: dict(o, sid="zz" * 16)),
     "box not authentic"),
    ("auth: ap a number", _json_answer("/api/v2/auth", lambda o: dict(o, ap=7)),
     "box not authentic"),
    ("config: unchanged as 1", _json_answer("/api/v2/config", lambda o: dict(o, unchanged=1)),
     "tampered payload"),
    ("ack: m altered", _json_answer("/api/v2/ack", lambda o: dict(o, m=_flip_hex(o["m"]))),
     "box not authentic"),
    ("any: a 503 with junk Retry-After", lambda p, s, d, c: (
        503, b'{"v":2,"error":"busy"}', "application/json") if p == "/api/v2/hello" else None,
     "box busy"),
]


@pytest.mark.parametrize("name,answer,status", HOSTILE_ANSWERS,
                         ids=[h[0] for h in HOSTILE_ANSWERS])
def test_a_hostile_answer_is_a_status_and_the_app_starts_with_the_last_good_config(
        tmp_path, name, answer, status):
    """A MITM or fake box alters one answer of the exchange: the device reports a status (never
    an exception), keeps its stored config byte for byte (unless it was the ack's answer, after
    the new config was stored), and main.py still starts the application with a config."""
    fleet = Fleet(tmp_path)
    fleet.set_defaults(OLD)
    boot = fleet.enroll("sensor-h")
    fleet.start_box()
    proxy = Proxy(fleet.port, None, answer=answer)
    try:
        assert fleet.check("sensor-h") == ("ok", OLD)
        stored = fleet.stored("sensor-h")
        if not name.startswith("config"):
            fleet.set_defaults(NEW)  # something to fetch
        fleet.write_bootstrap("sensor-h", dict(boot, port=proxy.port))
        fleet.world.advance(30)
        got, cfg = fleet.check("sensor-h")
        assert got == status, name
        assert proxy.hits >= 1
        if name.startswith("ack"):
            assert cfg == NEW  # stored and verified before the ack; only the box's word is bad
        else:
            assert cfg == OLD and fleet.stored("sensor-h") == stored
        # the firmware's main.py, with a check due (an hour on), starts the application with
        # the last good config, told that this boot's check did not confirm it
        fs = fleet.fs("sensor-h")
        fs.write("app.py", b"def main(config):\n"
                 b"    print('APP', config.state, config.status, config.get('mqtt.host'))\n")
        fleet.world.advance(3601)
        out = fleet.devrun("sensor-h", "import emu_boot\nemu_boot.run_main()")
        assert "APP stale %s %s" % (status, cfg["mqtt"]["host"]) in out, out
    finally:
        proxy.close()
        fleet.stop_box()


def test_a_twin_with_the_device_key_alone_gets_nothing(tmp_path):
    """The attacker of v1's finding: the AP passphrase and the device key, no TOTP secret. As a
    twin it answers hello with a proof made from DK (as v1's bp was) and a time ten years on:
    the device refuses it before sending anything that depends on its secrets, keeps its config
    and its TOTP counter, and the real box still serves it afterwards."""
    from shared import protocol

    fleet = Fleet(tmp_path)
    fleet.set_defaults(OLD)
    boot = fleet.enroll("sensor-t")
    fleet.start_box()
    dk = bytes.fromhex(boot["dk"])
    sent = {}

    def twin(path, status, data, ctype):
        if path != "/api/v2/hello":
            sent[path] = True  # anything past hello would be a leak
            return None
        o = json.loads(data)
        t = o["t"] + 10 * 365 * 86400
        cn = bytes.fromhex(json.loads(proxy.request)["cn"])
        o.update(t=t, bp=protocol.mac(dk, "cfgbox/2 box", o["box"], "sensor-t", cn,
                                      bytes.fromhex(o["sn"]), t).hex())
        return 200, json.dumps(o).encode(), "application/json"

    proxy = Proxy(fleet.port, None, answer=twin)
    try:
        assert fleet.check("sensor-t") == ("ok", OLD)
        ctr_before = fleet.devrun("sensor-t", "from shared.board import Board\n"
                                  "from client_fw import bootstrap\n"
                                  "print(bootstrap.read(Board())['ctr'])").strip()
        stored = fleet.stored("sensor-t")
        fleet.write_bootstrap("sensor-t", dict(boot, port=proxy.port))
        fleet.world.advance(30)
        assert fleet.check("sensor-t") == ("box not authentic", OLD)
        assert sent == {}  # no auth, no config request: nothing secret-dependent left the device
        assert fleet.stored("sensor-t") == stored
        ctr = fleet.devrun("sensor-t", "from shared.board import Board\n"
                           "from client_fw import bootstrap\n"
                                  "print(bootstrap.read(Board())['ctr'])").strip()
        assert ctr == ctr_before  # the counter did not move
        fleet.write_bootstrap("sensor-t", dict(boot, port=fleet.port))
        fleet.set_defaults(NEW)
        fleet.world.advance(30)
        assert fleet.check("sensor-t") == ("ok", NEW)  # the real box is not blocked
    finally:
        proxy.close()
        fleet.stop_box()
