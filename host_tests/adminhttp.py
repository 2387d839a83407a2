# Test harness: the admin API of a running box over HTTP, as the admin page's script uses it
# (a session cookie, the CSRF token in X-CSRF-Token). Not firmware.
import http.client
import json
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

_SPEC = yaml.safe_load((Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml")
                       .read_text())


def _resolve(node):
    while "$ref" in node:
        _, _, kind, name = node["$ref"].split("/")
        node = _SPEC["components"][kind][name]
    return node


def check_against_spec(method, path, status, out):
    """An admin answer must be one docs/openapi.yaml documents: its status, and its JSON
    against the status's schema (AssertionError otherwise)."""
    path = path.split("?")[0]
    op = _SPEC["paths"].get(path, {}).get(method.lower())
    assert op is not None, "undocumented: %s %s" % (method, path)
    res = op["responses"].get(str(status))
    assert res is not None, "%s %s answered %d, not documented" % (method, path, status)
    schema = _resolve(res).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        errors = list(Draft202012Validator(dict(_resolve(schema),
                                                components=_SPEC["components"])
                                           ).iter_errors(out))
        assert not errors, "%s %s %d: %s" % (method, path, status, errors[0].message)


class AdminClient:
    def __init__(self, port, host="127.0.4.1", source=None):
        """``source``: the station address the requests come from (default: the host's)."""
        self.host, self.port = host, port
        self.source = (source, 0) if source else None
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, csrf=True, cookie=True,
                check=True):
        """(status, JSON answer or text, headers) of one request (the box closes each);
        ``check``: the answer must be one docs/openapi.yaml documents."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120,  # a hang guard
                                          source_address=self.source)
        h = {"Host": "%s:%d" % (self.host, self.port)}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if cookie and self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf and method == "POST":
            h["X-CSRF-Token"] = self.csrf
        h.update(headers or {})
        conn.request(method, path, data, h)
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        ctype = r.getheader("Content-Type", "")
        out = json.loads(raw) if "json" in ctype and raw else raw.decode(errors="replace")
        if check and path.startswith("/admin/api/"):
            check_against_spec(method, path, r.status, out)
        set_cookie = r.getheader("Set-Cookie")
        if set_cookie:
            self.cookie = set_cookie.split(";")[0]
        return r.status, out, r

    def get(self, path, **kw):
        return self.request("GET", "/admin/api/" + path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", "/admin/api/" + path, {} if body is None else body, **kw)

    def login(self, passphrase, time=None, **extra):
        body = dict(extra, passphrase=passphrase)
        if time is not None:
            body["time"] = time
        s, out, r = self.post("login", body)
        if s == 200:
            self.csrf = out["csrf"]
        return s, out, r
