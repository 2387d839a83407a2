# docs/openapi.yaml kept true: a valid OpenAPI document whose paths are exactly the box's routes,
# and every request and answer of real exchanges (through microdot, under CPython) fits the
# schema and status codes it documents.
import asyncio
import json

import pytest
import yaml
from jsonschema import Draft202012Validator
from microdot.test_client import TestClient
from openapi_spec_validator import validate

from configurator_fw.app import make_app, routes
from hostbox import T0, HostDevice, new_api
from upy_harness import REPO

SPEC = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())


def test_document_is_valid_openapi():
    validate(SPEC)


class _RoutesOnly:
    """Enough of a box.Box for make_app to add the admin API's routes (nothing is served)."""

    api = None
    audit = None
    meta = {}


def test_documented_paths_are_exactly_the_routes():
    served = set(routes(make_app(_RoutesOnly(), lambda: T0)))
    documented = {(m.upper(), p) for p, ops in SPEC["paths"].items() for m in ops}
    assert documented == served


def _validator(ref_or_schema):
    # resolve "#/components/..." against the whole document
    return Draft202012Validator(dict(ref_or_schema, components=SPEC["components"]))


def _resolve(node):
    while "$ref" in node and len(node) == 1 and node["$ref"].startswith("#/components/"):
        _, _, kind, name = node["$ref"].split("/")
        node = SPEC["components"][kind][name]
    return node


class Wire:
    """The box's app under microdot's test client; every exchange is checked against the spec."""

    def __init__(self, api):
        self.client = TestClient(make_app(api, lambda: self.now))
        self.api = api
        self.now = T0
        self.seen = set()

    def send(self, method, path, body):
        headers = {"Content-Type": "application/json"}
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        res = asyncio.run(self.client.request(method, path, headers=headers, body=raw))
        binary = res.headers.get("Content-Type") == "application/octet-stream"
        out = res.body if binary else json.loads(res.body)
        ops = SPEC["paths"].get(path)
        if ops is None:  # unknown path: 404 with an Error, as the description says
            assert res.status_code == 404, (path, res.status_code)
            _validator(SPEC["components"]["schemas"]["Error"]).validate(out)
            return res.status_code, out, res.headers
        op = ops.get(method.lower())
        if op is None:  # a documented path, another method: its 405
            assert res.status_code == 405, (path, method, res.status_code)
            (op,) = ops.values()
        elif res.status_code < 400:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            _validator(_resolve(schema)).validate(body)
        assert str(res.status_code) in op["responses"], (path, res.status_code, out)
        doc = _resolve(op["responses"][str(res.status_code)])
        ctype = "application/octet-stream" if binary else "application/json"
        assert ctype in doc["content"], (path, res.status_code, ctype)
        schema = _resolve(doc["content"][ctype]["schema"])
        if binary:  # a byte string: its documented bound, and the version it starts with
            assert schema["format"] == "binary" and 4 + 1 + 16 + 16 + 32 <= len(out)
            assert len(out) <= schema["maxLength"]
        else:
            _validator(schema).validate(out)
        for name, h in doc.get("headers", {}).items():  # each documented header, as documented
            _validator(_resolve(h)["schema"]).validate(
                int(res.headers[name]) if name == "Retry-After" else res.headers[name])
        self.seen.add((path, res.status_code))
        return res.status_code, out, res.headers


class WireApi:
    """DeviceApi-shaped adapter so hostbox.HostDevice talks HTTP through Wire."""

    def __init__(self, wire):
        self.wire = wire
        self.store = wire.api.store

    def handle(self, path, body, station, now):
        self.wire.now = now
        return self.wire.send("POST", path, body)


@pytest.fixture
def wire(tmp_path):
    api, boot = new_api(tmp_path, ["sensor-1"])
    api.store.set_defaults({"ntp": "pool.ntp.org", "mqtt": {"host": "10.0.0.2", "port": 8883}})
    w = Wire(api)
    w.boot = boot
    return w


def test_real_exchanges_fit_the_spec(wire):
    d = HostDevice(WireApi(wire), wire.boot["sensor-1"])
    ver, cfg = d.exchange(T0)
    assert json.loads(cfg)["ntp"] == "pool.ntp.org"
    assert d.exchange(T0 + 30, have=ver) == (ver, None)
    for path in ("/api/v2/auth", "/api/v2/config", "/api/v2/ack"):  # replays: 401
        assert wire.send("POST", path, d.sent[path])[0] == 401
    assert wire.send("POST", "/api/v2/hello", {"v": 1})[0] == 400
    assert wire.send("POST", "/api/v2/hello", b"{broken")[0] == 400
    assert wire.send("POST", "/api/v2/auth", b"[" * 10 + b"]" * 10)[0] == 400
    assert wire.send("POST", "/api/v2/ack", b"x" * 4096)[0] == 413
    assert wire.send("GET", "/api/v2/config", b"")[0] == 405
    assert wire.send("POST", "/api/v2/other", {"v": 2})[0] == 404
    wire.api.clock_ok = False  # the box's clock not set: 503 "clock"
    assert wire.send("POST", "/api/v2/hello", {"v": 2, "dev": "x", "cn": "00" * 16})[0] == 503
    wire.api.clock_ok = True
    assert wire.send("POST", "/api/v2/hello", {"v": 2, "dev": "x"})[0] == 400
    for i in range(10):
        body = {"v": 2, "dev": "g%d" % i, "cn": "00" * 16, "sn": "11" * 16, "c": 1,
                "dp": "00" * 32}
        wire.send("POST", "/api/v2/auth", body)
    assert wire.send("POST", "/api/v2/config", {"v": 2})[0] == 429
    # every documented answer of the device routes was produced and checked at least once
    assert {("/api/v2/config", 200), ("/api/v2/ack", 401), ("/api/v2/hello", 503),
            ("/api/v2/ack", 413), ("/api/v2/config", 405), ("/api/v2/config", 429)} <= wire.seen
