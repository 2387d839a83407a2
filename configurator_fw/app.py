# HTTP transport of the box: microdot routes, input caps, JSON errors; the logic is in api.py.
import asyncio
import json

from microdot import Microdot, Request

from shared import protocol

MAX_BODY = 2048
MAX_LINE = 512
MAX_DEPTH = 4
STREAMS = 4  # configs sent at once: each holds ~5 KB of buffers and cipher state


class _Slots:
    """At most ``n`` config streams at once; the others wait their turn (their sessions stay
    valid for 60 s). A stream its connection never finished frees its slot after 60 s."""

    def __init__(self, n):
        self.n = n
        self.busy = {}  # id(stream) -> when it started
        self.event = asyncio.Event()

    async def take(self, key, now):
        while True:
            for k in [k for k, t in self.busy.items() if now() - t >= 60]:
                del self.busy[k]
            if len(self.busy) < self.n:
                self.busy[key] = now()
                return
            self.event.clear()
            await self.event.wait()

    def give(self, key):
        self.busy.pop(key, None)
        self.event.set()

    def guard(self, stream):
        try:
            yield from stream
        finally:
            self.give(id(stream))


def _json_error(status, msg, headers=None):
    h = {"Content-Type": "application/json"}
    if headers:
        h.update(headers)
    return json.dumps({"v": protocol.VERSION, "error": msg}), status, h


def _depth(obj, d=1):
    if d > MAX_DEPTH:
        return d
    if isinstance(obj, dict):
        obj = obj.values()
    elif not isinstance(obj, list):
        return d
    return max([_depth(x, d + 1) for x in obj] or [d])


def station_of(request):
    """The client's IP as text (the ESP32's socket gives (ip, port) tuples)."""
    addr = request.client_addr
    return addr[0] if isinstance(addr, tuple) else str(addr)


def make_app(api, clock):
    """The box's web app serving ``api`` (a DeviceApi); ``clock()`` gives Unix seconds."""
    Request.max_content_length = MAX_BODY
    Request.max_body_length = MAX_BODY
    Request.max_readline = MAX_LINE
    app = Microdot()
    slots = _Slots(STREAMS)

    async def device_route(request):
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeError):
            return _json_error(400, "malformed JSON")
        if _depth(body) > MAX_DEPTH:
            return _json_error(400, "JSON too deep")
        status, out, headers = api.handle(request.path, body, station_of(request), clock())
        h = {"Content-Type": "application/json"}
        if headers:
            h.update(headers)
        if not isinstance(out, dict):  # a config streamed as it is made (api.DeviceApi._stream)
            await slots.take(id(out), clock)
            return slots.guard(out), status, h
        return json.dumps(out), status, h

    for path in (protocol.HELLO, protocol.AUTH, protocol.CONFIG, protocol.ACK):
        app.route(path, methods=["POST"])(device_route)

    for status, msg in ((400, "bad request"), (404, "not found"), (405, "method not allowed"),
                        (413, "request too large")):
        app.errorhandler(status)(lambda req, s=status, m=msg: _json_error(s, m))

    @app.errorhandler(Exception)
    def internal(req, exc):
        # never a 500 with a traceback to the radio; the console got print_exception
        return _json_error(503, "unavailable", {"Retry-After": "5"})

    return app


def routes(app):
    """(method, path) pairs the app serves: docs/openapi.yaml is checked against them."""
    out = []
    for entry in app.url_map:
        methods, pattern = entry[0], entry[1]
        for m in methods:
            out.append((m, pattern.url_pattern))
    return out
