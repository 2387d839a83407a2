# HTTP transport of the box: microdot routes, input caps, JSON errors; the logic is in api.py.
import asyncio
import json

from microdot import Microdot
from microdot.microdot import Response

from shared import protocol

MAX_DEPTH = 4
MAX_BODY = 2048
# configs sent at once: each holds ~5 KB of buffers and cipher state, and each waiting device
# its session and request besides. With 4, a 1,000-device box taking 10 stations at once ran out
# of heap (6 KB free with 3 streams and 10 sessions): answers cut off, 503s, a device's whole
# exchange again. With two, make bench's 1,000 devices in waves of 10 had no request failed for
# memory, and the box spent less CPU per device (docs/OPERATOR.md).
STREAMS = 2


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

    def guard(self, stream, first):
        try:
            yield first
            yield from stream
        finally:
            self.give(id(stream))


class Chunked(Response):
    """A config answer: HTTP/1.1 with its body in chunks, so a stream cut short (memory, a
    store check that failed, a deadline) reaches the device without its last chunk, which it
    tells from a complete body (PROTOCOL.md s.3.3). The device's request is HTTP/1.1."""

    async def write(self, stream):
        await stream.awrite(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        for piece in self.body:
            await stream.awrite(b"%x\r\n" % len(piece) + piece + b"\r\n")
        await stream.awrite(b"0\r\n\r\n")


JSON_HEADERS = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}


def _json_error(status, msg, headers=None):
    h = dict(JSON_HEADERS)
    if headers:
        h.update(headers)
    return json.dumps({"v": protocol.VERSION, "error": msg}), status, h


def _structure(raw):
    """The bytes of the JSON text ``raw`` outside its strings (its structure), one at a time."""
    in_str = esc = False
    for b in raw:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:  # backslash
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        else:
            yield b


def too_deep(raw, limit=MAX_DEPTH):
    """True if the JSON text ``raw`` (bytes) nests deeper than ``limit``: found before it is
    parsed, as the parser's own stack would grow with it. A device's request has one '{'."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for b in _structure(raw):
        if b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif b in (0x5D, 0x7D):
            depth -= 1
    return False


def too_many(raw, limit):
    """True if the JSON text ``raw`` holds more than ``limit`` values (members and items, the
    commas and colons outside strings, counted before it is parsed: a body's objects take far
    more heap than its bytes)."""
    if raw.count(b",") + raw.count(b":") <= limit:
        return False
    n = 0
    for b in _structure(raw):
        if b in (0x2C, 0x3A):
            n += 1
            if n > limit:
                return True
    return False


def _hex4(raw, i):
    try:
        return int(bytes(raw[i:i + 4]), 16) if len(raw) >= i + 4 else -1
    except ValueError:
        return -1


def utf8_pairs(raw):
    """``raw`` (JSON bytes) with each escaped surrogate pair (\\ud83d\\ude00) written as the UTF-8
    of its character: MicroPython's parser would make each half a character of its own, and a
    string of them is not UTF-8. ValueError for a lone half (it is no character). Done in place
    in a bytearray (4 bytes for 12: the text only shrinks), no copy of the body."""
    i = raw.find(b"\\u")
    if i < 0:
        return raw
    buf = raw if isinstance(raw, bytearray) else bytearray(raw)
    n = len(buf)
    w = r = 0  # bytes kept so far; where reading goes on
    i = buf.find(b"\\")
    while 0 <= i < n - 1:
        if buf[i + 1] != 0x75:  # another escape (\\ too): its two bytes
            i = buf.find(b"\\", i + 2)
            continue
        hi = _hex4(buf, i + 2)
        if not 0xD800 <= hi <= 0xDFFF:
            i = buf.find(b"\\", i + 6)
            continue
        lo = _hex4(buf, i + 8) if buf[i + 6:i + 8] == b"\\u" else -1
        if hi > 0xDBFF or not 0xDC00 <= lo <= 0xDFFF:
            raise ValueError("malformed JSON: a lone surrogate escape")
        c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        if w != r:
            buf[w:w + i - r] = memoryview(buf)[r:i]
        w += i - r
        buf[w:w + 4] = bytes((0xF0 | c >> 18, 0x80 | c >> 12 & 63, 0x80 | c >> 6 & 63,
                              0x80 | c & 63))
        w += 4
        r = i + 12
        i = buf.find(b"\\", r)
    if r == 0:
        return raw
    buf[w:w + n - r] = memoryview(buf)[r:n]
    for j in range(w + n - r, n):  # JSON whitespace in what the text gave up: no new buffer
        buf[j] = 0x20
    return buf


def station_of(request):
    """The client's IP as text (the ESP32's socket gives (ip, port) tuples)."""
    addr = request.client_addr
    return addr[0] if isinstance(addr, tuple) else str(addr)


def allowed(app, path):
    """The methods ``app`` serves at ``path``, for a 405's Allow header."""
    out = []
    for entry in app.url_map:
        if entry[1].match(path) is not None:
            out.extend(m for m in entry[0] if m not in out)
    return ", ".join(out)


class _Open:
    """A box that is always unlocked with ``api`` (the device API alone: tests, bench)."""

    def __init__(self, api):
        self.api = api


def load_json(raw, limit=MAX_DEPTH):
    """The JSON value of ``raw`` (bytes), its depth checked before parsing; ValueError with the
    message a 400 carries otherwise."""
    if too_deep(raw, limit):
        raise ValueError("JSON too deep")
    try:
        return json.loads(utf8_pairs(raw))
    except (ValueError, UnicodeError):
        raise ValueError("malformed JSON") from None


class TooMany(ValueError):
    """A body of more JSON values than the box parses (a 413)."""


def parse_json(request, limit=MAX_DEPTH, values=None):
    """The request's JSON object (the admin API); ValueError with a message otherwise (TooMany
    over ``values`` JSON values)."""
    if values is not None and too_many(request.body, values):
        raise TooMany("more than %d JSON values" % values)
    body = load_json(request.body, limit)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def make_app(box, clock, log=print):
    """The box's web app: the device API of ``box`` (a box.Box, or a DeviceApi alone) and, for
    a Box, the admin page and its API; ``clock()`` gives Unix seconds."""
    if hasattr(box, "handle"):
        box = _Open(box)
    app = Microdot()
    app.options_handler = None  # OPTIONS is not served: 405 like any other method (s.5)
    slots = _Slots(STREAMS)

    @app.before_request
    def exact_methods(req):
        # methods are case-sensitive (RFC 9110 s.9.1) and HEAD is not served (PROTOCOL.md s.5):
        # microdot would take "get" and HEAD as GET
        if req.method not in ("GET", "POST"):
            return _json_error(405, "method not allowed", {"Allow": allowed(app, req.path)})

    async def device_route(request):
        try:
            return await _route(request)
        except Exception as e:  # noqa: BLE001 - one line to the console, never a traceback
            log("cfgbox: %s in %s: %s" % (type(e).__name__, request.path, e))
            return _json_error(503, "unavailable", {"Retry-After": "5"})

    async def _route(request):
        if request.content_length > MAX_BODY:  # the transport refuses it first (server.py)
            return _json_error(413, "request too large")
        try:
            body = load_json(request.body)
        except ValueError as e:
            return _json_error(400, str(e))
        api = box.api
        if api is None:  # sealed: nothing but the admin page's login until the operator unlocks
            return _json_error(503, "sealed", {"Retry-After": "30"})
        status, out, headers = api.handle(request.path, body, station_of(request), clock())
        h = dict(JSON_HEADERS)
        if headers:
            h.update(headers)
        if not isinstance(out, dict):  # a config streamed as it is made (api.DeviceApi._stream)
            await slots.take(id(out), clock)
            try:  # its files opened and buffers made: before the head, or a 503 instead
                first = next(out)
            except MemoryError:
                slots.give(id(out))
                out.close()
                log("cfgbox: out of memory starting a config stream; 503 before its head")
                return _json_error(503, "busy", {"Retry-After": "2"})
            except BaseException:
                slots.give(id(out))
                raise
            return Chunked(slots.guard(out, first), status, h)
        return json.dumps(out), status, h

    for path in (protocol.HELLO, protocol.AUTH, protocol.CONFIG, protocol.ACK):
        app.route(path, methods=["POST"])(device_route)

    if hasattr(box, "audit"):  # a real box: its admin page and API (admin_web.py)
        from configurator_fw import admin_web

        app.admin = admin_web.add_routes(
            app, box, lambda r: parse_json(r, admin_web.MAX_DEPTH, admin_web.MAX_VALUES), log)

    for status, msg in ((400, "bad request"), (404, "not found"), (413, "request too large")):
        app.errorhandler(status)(lambda req, s=status, m=msg: _json_error(s, m))

    @app.errorhandler(405)
    def not_allowed(req):
        return _json_error(405, "method not allowed", {"Allow": allowed(app, req.path)})

    @app.errorhandler(Exception)
    def internal(req, exc):
        # never a 500 with a traceback to the radio
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
