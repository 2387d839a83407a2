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
    def __init__(self, box_port, alter, drop_auth_answers=0):
        self.hits = 0
        self.drop = drop_auth_answers  # the box's answers to auth lost on the way back
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                c = http.client.HTTPConnection("127.0.4.1", box_port, timeout=10)
                c.request("POST", self.path, body, {"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                ctype = r.getheader("Content-Type")
                if self.path == "/api/v2/auth" and proxy.drop:
                    proxy.drop -= 1
                    self.close_connection = True  # the box accepted; the device never hears
                    return
                if self.path == "/api/v2/config" and r.status == 200:
                    data, ctype = alter(data, json.loads(body)["have"])
                    proxy.hits += 1
                self.send_response(r.status)
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
