# A minimal HTTP/1.x client over a socket bound to the station's address (microdot is a server
# only): timeouts, a capped status line and headers, and a body read as JSON (small answers) or
# streamed through the caller's buffer (the config), never held whole.
import json
import socket

MAX_LINE = 512
MAX_HEADERS = 24
MAX_JSON = 1024  # the box's JSON answers are a few hundred bytes


_DROPPED = (32, 104, 128)  # EPIPE, ECONNRESET, ENOTCONN


class HttpError(OSError):
    pass


class Unanswered(HttpError):
    """The request never got a byte of an answer: the connection failed, or the box closed it
    before answering (a box with no socket or slot for it drops it unread)."""


class Response:
    def __init__(self, sock):
        self._s = sock
        self.status = 0
        self.retry = None  # Retry-After, seconds
        self.json_body = False
        self.left = None  # bytes of body still to come; None: until the box closes
        self.chunk = -1  # a chunked body's bytes left in this chunk; -1: not chunked

    def _head(self):
        s = self._s
        try:
            line = s.readline(MAX_LINE)
        except OSError as e:  # reset before a byte came (no socket for it); a timeout is not
            if (e.args[0] if e.args else None) in _DROPPED:
                raise Unanswered("reset before an answer") from None
            raise
        if not line:
            raise Unanswered("closed before an answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError("bad status line")
        if len(parts[1]) != 3 or not parts[1].isdigit():
            raise HttpError("bad status code")
        self.status = int(parts[1])
        for _ in range(MAX_HEADERS + 1):
            h = s.readline(MAX_LINE)
            if not h.endswith(b"\n"):
                raise HttpError("header line too long or truncated")
            if h in (b"\r\n", b"\n"):
                return
            k, _, v = h.partition(b":")
            k = k.strip().lower()
            v = v.strip()
            if k == b"content-length":
                if not v.isdigit() or len(v) > 9:
                    raise HttpError("bad Content-Length")
                self.left = int(v)
            elif k == b"retry-after":  # seconds; anything else (a date, junk) is ignored
                self.retry = min(int(v), 3600) if v.isdigit() and len(v) < 9 else None
            elif k == b"content-type":
                self.json_body = v.startswith(b"application/json")
            elif k == b"transfer-encoding":
                if v.lower() != b"chunked":
                    raise HttpError("bad Transfer-Encoding")
                self.chunk = 0
        raise HttpError("too many headers")

    def _size(self):
        """The next chunk's size (a chunked body: the config); its end must be there, so a body
        cut short raises instead of reading as complete."""
        line = self._s.readline(MAX_LINE)
        if not line.endswith(b"\n"):
            raise HttpError("response truncated")
        try:
            n = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise HttpError("bad chunk size") from None
        if n == 0:  # the last chunk, then trailers (none) and the blank line
            for _ in range(MAX_HEADERS + 1):
                h = self._s.readline(MAX_LINE)
                if not h.endswith(b"\n"):
                    raise HttpError("response truncated")
                if h in (b"\r\n", b"\n"):
                    self.left = 0
                    return 0
            raise HttpError("too many trailers")
        return n

    def readinto(self, buf):
        """Up to len(buf) more bytes of the body; 0 at its end."""
        if self.left == 0:
            return 0
        if self.chunk >= 0:
            if self.chunk == 0:
                self.chunk = self._size()
                if not self.chunk:
                    return 0
            mv = memoryview(buf)
            if self.chunk < len(mv):
                mv = mv[: self.chunk]
            n = self._s.readinto(mv)
            if not n:
                raise HttpError("response truncated")
            self.chunk -= n
            if not self.chunk and self._s.readline(MAX_LINE) not in (b"\r\n", b"\n"):
                raise HttpError("bad chunk end")
            return n
        mv = memoryview(buf)
        if self.left is not None and self.left < len(mv):
            mv = mv[: self.left]
        n = self._s.readinto(mv)
        if not n:
            if self.left:
                raise HttpError("response truncated")
            self.left = 0
            return 0
        if self.left is not None:
            self.left -= n
        return n

    def json(self):
        """The body parsed as JSON (at most MAX_JSON bytes, with a Content-Length)."""
        if not self.json_body or self.left is None or self.left > MAX_JSON:
            raise HttpError("not a small JSON answer")
        buf = bytearray(self.left)
        got = 0
        while got < len(buf):
            n = self.readinto(memoryview(buf)[got:])
            if not n:
                raise HttpError("response truncated")
            got += n
        return json.loads(buf)

    def close(self):
        self._s.close()


def post(host, port, path, obj, src=None, timeout=5):
    """POST ``obj`` as JSON; returns the Response (status and headers read), which the caller
    reads and closes."""
    body = json.dumps(obj).encode()
    s = socket.socket()
    try:
        s.settimeout(timeout)
        if src:
            s.bind(socket.getaddrinfo(src, 0)[0][-1])
        try:
            s.connect(socket.getaddrinfo(host, port)[0][-1])
            s.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                    % (path.encode(), host.encode(), len(body)))
            s.write(body)
        except OSError as e:
            if isinstance(e, HttpError):
                raise
            raise Unanswered("connection: %s" % (e.args[0] if e.args else e)) from None
        del body
        r = Response(s)
        r._head()
        return r
    except BaseException:
        s.close()
        raise
