# The box's HTTP transport under attack: a connection budget within lwIP's 10 sockets, a
# deadline per request, caps enforced before anything is buffered, and a supervisor that
# restarts the server whatever ends it. Routing and responses are microdot's (make_app).
import asyncio
import time

from microdot.microdot import NoCaseDict, Request

MAX_LINE = 512  # the request line and each header line (PROTOCOL.md s.5)
MAX_HEADERS = 20
MAX_HEAD = 2048  # request line and headers together: grown as needed; past SMALL_HEAD for one
SMALL_HEAD = 1024  # connection at a time (headless Chromium's head: 0.57-0.7 KB, measured)
MAX_BODY = 2048
BUDGET = 7  # connections at once: 10 sockets less the listener, less 2 to accept-and-close
PER_STATION = 2  # a device needs one
REQUEST_MS = 4000  # from accept to the last byte of the body: idle, slow head or body alike
ANSWER_MS = 30000  # sending the answer (a 16 KB config over a weak link)
_TICK_MS = 250
_GROW = 256

_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 503: "Service Unavailable"}


class HttpError(Exception):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status
        self.msg = msg


def _error_bytes(status, msg):
    body = '{"v":2,"error":"%s"}' % msg
    retry = "Retry-After: 2\r\n" if status == 503 else ""
    return ("HTTP/1.0 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s"
            "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), retry, body)).encode()


async def _read_head(reader, buf, may_grow=None):
    """Read up to the blank line into ``buf`` (a bytearray, grown 256 bytes at a time: a
    fragmented heap has small blocks to spare when it has no 1 KB one); (head length, bytes
    read). Never more than MAX_HEAD, and past SMALL_HEAD only if ``may_grow()`` says this
    connection may (one at a time): a longer head is a 413 before anything else is read."""
    n = 0
    while True:
        if n >= len(buf):
            if len(buf) >= MAX_HEAD or len(buf) >= SMALL_HEAD and not (may_grow and
                                                                      may_grow()):
                raise HttpError(413, "request head too large")
            buf.extend(bytes(_GROW))
        got = await reader.readinto(memoryview(buf)[n:])
        if got is None:
            continue
        if not got:
            raise EOFError
        start = max(0, n - 3)
        n += got
        end = bytes(buf[start:n]).find(b"\r\n\r\n")
        if end >= 0:
            return start + end, n


def parse_head(head):
    """(method, target, version, headers) of a request head (bytes without the blank line);
    HttpError for anything a device or a browser would not send."""
    lines = head.split(b"\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(413, "too many header lines")
    for line in lines:
        if len(line) > MAX_LINE:
            raise HttpError(413, "header line too long")
    try:
        method, target, version = lines[0].decode().split(" ")
    except (ValueError, UnicodeError):
        raise HttpError(400, "bad request line") from None
    if version not in ("HTTP/1.0", "HTTP/1.1") or not method.isalpha() or \
            not target.startswith("/"):
        raise HttpError(400, "bad request line")
    headers = NoCaseDict()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "bad header line")
        try:
            headers[name.decode()] = value.strip().decode()
        except UnicodeError:
            raise HttpError(400, "bad header line") from None
    if "Transfer-Encoding" in headers:
        raise HttpError(400, "Transfer-Encoding is not supported; send Content-Length")
    return method, target, version[5:], headers


def body_length(method, headers, cap=None):
    """The Content-Length of a request, checked: digits only, at most ``cap`` (MAX_BODY)."""
    cap = cap or MAX_BODY
    cl = headers.get("Content-Length")
    if cl is None:
        if method in ("POST", "PUT", "PATCH"):
            raise HttpError(411, "Content-Length required")
        return 0
    if not cl.isdigit():
        raise HttpError(400, "bad Content-Length")
    if len(cl) > 9 or int(cl) > cap:  # a number, too large: never parsed past 9 digits
        raise HttpError(413, "request too large")
    return int(cl)


class _Sent:
    """The connection's writer, noting in ``entry`` once the first byte of an answer went out:
    after that an error can only cut the answer off (close), never patch another status in."""

    def __init__(self, writer, entry):
        self.w = writer
        self.entry = entry

    async def awrite(self, data):
        self.entry[3] = True
        await self.w.awrite(data)


class Server:
    """Serves ``app`` (a Microdot app) with the limits above; ``log`` takes one-line messages."""

    def __init__(self, app, log, budget=BUDGET, per_station=PER_STATION):
        self.app = app
        self.log = log
        self.budget = budget
        self.per_station = per_station
        self.conns = {}  # task -> [deadline (ticks), station, reading (bool)]
        self.refused = 0  # connections closed at once: over budget or over a station's share
        self.big = None  # the one connection whose head may grow past SMALL_HEAD

    def _admit(self, station):
        if sum(1 for e in self.conns.values() if e[1] == station) >= self.per_station:
            return False
        if len(self.conns) < self.budget:
            return True
        # full: the oldest connection still sending its request gives way (an idle one)
        reading = [(e[0], t) for t, e in self.conns.items() if e[2]]
        if not reading:
            return False
        task = min(reading, key=lambda x: x[0])[1]
        self.conns.pop(task)[2] = False
        task.cancel()
        return True

    async def _conn(self, reader, writer):
        addr = reader.get_extra_info("peername")
        station = addr[0] if isinstance(addr, tuple) else str(addr)
        if not self._admit(station):
            self.refused += 1
            await writer.wait_closed()
            return
        task = asyncio.current_task()
        # deadline (ticks), station, still reading its request, an answer's first byte sent
        entry = [time.ticks_add(time.ticks_ms(), REQUEST_MS), station, True, False]
        self.conns[task] = entry
        try:
            await self._one(reader, writer, addr, entry)
        except HttpError as e:
            await self._send(writer, _error_bytes(e.status, e.msg))
        except (asyncio.CancelledError, EOFError, OSError):
            pass  # deadline, eviction, or the peer went away: nothing to answer
        except MemoryError:
            self.log("cfgbox: out of memory serving %s%s" % (station, self._cut(entry)))
            if not entry[3]:
                await self._send(writer, _error_bytes(503, "busy"))
        except Exception as e:  # noqa: BLE001 - the server outlives any request
            self.log("cfgbox: %s serving %s: %s%s" % (type(e).__name__, station, e,
                                                      self._cut(entry)))
            if not entry[3]:
                await self._send(writer, _error_bytes(503, "unavailable"))
        finally:
            self.conns.pop(task, None)
            if self.big is task:
                self.big = None
            try:
                await writer.wait_closed()
            except OSError:
                pass

    @staticmethod
    def _cut(entry):
        return "; its answer was cut off" if entry[3] else ""

    async def _send(self, writer, data):
        try:
            await writer.awrite(data)
        except (OSError, asyncio.CancelledError):
            pass

    async def _one(self, reader, writer, addr, entry):
        buf = bytearray(_GROW)
        task = asyncio.current_task()

        def may_grow():  # the large-head slot: free, or this connection's already
            if self.big is None or self.big not in self.conns:
                self.big = task
            return self.big is task

        end, n = await _read_head(reader, buf, may_grow)
        method, target, version, headers = parse_head(bytes(buf[:end]))
        admin = getattr(self.app, "admin", None)
        cap = None
        if admin and target.startswith("/admin/api/") and admin.logged_in(headers):
            cap = admin.body_cap(target)  # a logged-in config edit: larger, never a stranger's
        length = body_length(method, headers, cap)
        body = bytearray(length)
        have = min(length, n - end - 4)
        body[:have] = buf[end + 4: end + 4 + have]
        del buf
        while have < length:
            got = await reader.readinto(memoryview(body)[have:])
            if got is None:
                continue
            if not got:
                raise EOFError
            have += got
        entry[2] = False  # the request is in: no longer evictable, the answer's deadline now
        entry[0] = time.ticks_add(time.ticks_ms(), ANSWER_MS)
        # the body as read (no copy of it: up to 8 KB for an admin edit); the routes only parse it
        req = Request(self.app, addr, method, target, version, headers, body=body,
                      sock=(reader, writer))
        del body
        res = await self.app.dispatch_request(req)
        try:
            await res.write(_Sent(writer, entry))
        finally:
            # a body cut short (deadline, a peer gone, memory) is closed here, so a config
            # stream gives back its slot and its files now, not when its slot expires
            close = getattr(res.body, "close", None)
            if close:
                close()

    async def _watchdog(self):
        while True:
            await asyncio.sleep_ms(_TICK_MS)
            now = time.ticks_ms()
            for task in [t for t, e in self.conns.items() if time.ticks_diff(now, e[0]) > 0]:
                self.conns.pop(task, None)
                task.cancel()

    async def serve(self, host, port):
        srv = await asyncio.start_server(self._conn, host, port, backlog=2)
        dog = asyncio.create_task(self._watchdog())
        try:
            await srv.wait_closed()
        finally:
            dog.cancel()
            srv.close()


def run(app, host, port, log):
    """Serve for ever: whatever ends the server (an exception, memory), it starts again."""
    server = Server(app, log)
    while True:
        try:
            asyncio.run(server.serve(host, port))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - the supervisor: log one line, go on
            log("cfgbox: server stopped (%s: %s); starting again" % (type(e).__name__, e))
        server.conns.clear()
        asyncio.new_event_loop()
        time.sleep_ms(500)
