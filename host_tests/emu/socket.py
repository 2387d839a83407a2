# Host emulation — never copied to a board. The ESP32 port's `socket` (ports/esp32/modsocket.c)
# over the unix port's: addresses are (ip, port) tuples as on the board, and lwIP's hard limit
# of 10 sockets per board holds, the listener included. socket() then raises OSError(ENFILE) as
# the port does; accept() takes the connection and drops it (the client sees it reset), as lwIP
# does when it has no socket for it. Names resolve only through the DNS of the AP the board's
# station joined (else OSError(-202), lwIP's EAI_FAIL, as the port raises it), and an address on
# an emulated network the board is not on is unreachable (EHOSTUNREACH). Frozen into the test
# interpreter, it shadows the unix port's `socket`; the emulation reaches that one as `usocket`,
# and emu_boot then makes `usocket` name this module, as on a board, where `import usocket` is
# `socket` (libraries such as umqtt.simple import it so).
import io

import usocket as _u

AF_INET = _u.AF_INET
SOCK_STREAM = _u.SOCK_STREAM
SOCK_DGRAM = _u.SOCK_DGRAM
SOL_SOCKET = _u.SOL_SOCKET
SO_REUSEADDR = _u.SO_REUSEADDR
IPPROTO_TCP = 6

MAX_SOCKETS = 10  # CONFIG_LWIP_MAX_SOCKETS in the port's sdkconfig
_ENFILE = 23
_EHOSTUNREACH = 113
_EAI_FAIL = -202
_GET_FILENO = 10  # MP_STREAM_GET_FILENO: lets select.poll (asyncio) see the real socket
_CLOSE = 4  # MP_STREAM_CLOSE: how a stream wrapping this one (tls) closes it
_POLL = 3  # MP_STREAM_POLL: how select.poll of a stream wrapping this one (tls) asks it
_POLL_HUP_ERR = 0x18  # MP_STREAM_POLL_ERR | _HUP: always reported (the flags are poll(2)'s)
_open = [0]


def open_sockets():
    return _open[0]


def _raw(addr):
    return _u.getaddrinfo(addr[0], addr[1])[0][-1]


def _tuple(raw):
    af, ip, port = _u.sockaddr(raw)[:3]
    return (_u.inet_ntop(af, ip), port)


def _is_ip(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """As on the ESP32: [(family, type, proto, '', (ip, port))], IPv4 stream first."""
    if not _is_ip(host):
        import network

        joined = network.joined_network()
        if not joined or host not in joined[1]:
            raise OSError(_EAI_FAIL)
        host = joined[1][host]
    a = _u.getaddrinfo(host, port)[0]
    return [(AF_INET, SOCK_STREAM, 6, "", _tuple(a[-1]))]


def _route(ip):
    """Refuse an address on an emulated network this board is not on (lwIP: no route)."""
    import network

    net = ip.rsplit(".", 1)[0]
    if net in network.networks():
        joined = network.joined_network()
        if not joined or joined[0] != net:
            raise OSError(_EHOSTUNREACH)
        return network.WLAN(network.STA_IF).ifconfig()[0]
    return None


class socket(io.IOBase):
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0, _sock=None):
        if _sock is None:
            if _open[0] >= MAX_SOCKETS:
                raise OSError(_ENFILE)
            _sock = _u.socket(af, type, proto)
        self._s = _sock
        self._bound = False
        self._poller = None
        _open[0] += 1

    def close(self):
        if self._s is not None:
            self._s.close()
            self._s = None
            _open[0] -= 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def ioctl(self, request, arg):
        if request == _GET_FILENO:
            return self._s.fileno()
        if request == _CLOSE:
            self.close()
            return 0
        if request == _POLL:
            if self._poller is None:
                import select

                self._poller = select.poll()
                self._poller.register(self._s, select.POLLIN | select.POLLOUT)
            ready = self._poller.poll(0)
            return ready[0][1] & (arg | _POLL_HUP_ERR) if ready else 0
        return -1

    def accept(self):
        s, addr = self._s.accept()
        if _open[0] >= MAX_SOCKETS:
            s.close()  # lwIP had no socket for it: the peer sees the connection drop
            raise OSError(_ENFILE)
        return socket(_sock=s), _tuple(addr)

    def bind(self, addr):
        self._s.bind(_raw(addr))
        self._bound = True

    def connect(self, addr):
        src = _route(addr[0])
        if src and not self._bound:  # from the station's own address, as on the board
            self.bind((src, 0))
        self._s.connect(_raw(addr))

    def listen(self, backlog=5):
        self._s.listen(backlog)

    def setsockopt(self, level, opt, value):
        self._s.setsockopt(level, opt, value)

    def setblocking(self, flag):
        self._s.setblocking(flag)

    def settimeout(self, t):
        self._s.settimeout(t)

    def read(self, n=-1):
        return self._s.read(n) if n >= 0 else self._s.read()

    def readinto(self, buf, n=None):
        return self._s.readinto(buf) if n is None else self._s.readinto(buf, n)

    def readline(self, n=-1):
        return self._s.readline(n) if n >= 0 else self._s.readline()

    def write(self, buf, n=None):
        return self._s.write(buf) if n is None else self._s.write(buf, n)

    def send(self, buf):
        return self._s.send(buf)

    def sendall(self, buf):
        return self._s.sendall(buf) if hasattr(self._s, "sendall") else self._s.write(buf)

    def recv(self, n):
        return self._s.recv(n)
