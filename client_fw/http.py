# A minimal HTTP/1.1 JSON client over a socket bound to the station's address (microdot is a
# server only): timeouts, capped status line, headers and body.
import json
import socket

MAX_LINE = 512
MAX_HEADERS = 24


class HttpError(OSError):
    pass


def post_json(host, port, path, obj, src=None, timeout=5, max_body=24576):
    """POST ``obj`` as JSON; returns (status, retry_after or None, parsed JSON body)."""
    body = json.dumps(obj).encode()
    s = socket.socket()
    try:
        s.settimeout(timeout)
        if src:
            s.bind(socket.getaddrinfo(src, 0)[0][-1])
        s.connect(socket.getaddrinfo(host, port)[0][-1])
        s.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (path.encode(),
                                                                      host.encode(), len(body)))
        s.write(body)
        del body
        line = s.readline(MAX_LINE)
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError("bad status line")
        status = int(parts[1])
        length = None
        retry = None
        for _ in range(MAX_HEADERS + 1):
            h = s.readline(MAX_LINE)
            if not h.endswith(b"\n"):
                raise HttpError("header line too long or truncated")
            if h in (b"\r\n", b"\n"):
                break
            k, _, v = h.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"retry-after":
                retry = int(v)
        else:
            raise HttpError("too many headers")
        if length is None or not 0 <= length <= max_body:
            raise HttpError("response body missing or over %d bytes" % max_body)
        buf = bytearray(length)
        mv = memoryview(buf)
        got = 0
        while got < length:
            n = s.readinto(mv[got:])
            if not n:
                raise HttpError("response truncated")
            got += n
        return status, retry, json.loads(buf)
    finally:
        s.close()
