# Lockout accounting with growing back-off: per device (persisted) and per station (in RAM).
DEVICE_THRESHOLD = 5
STATION_THRESHOLD = 10
BASE = 30
CAP = 3600


def lock_after(fails, threshold, now):
    """Unix time until which a party with ``fails`` consecutive failures is locked (0: not)."""
    if fails < threshold:
        return 0
    return now + min(CAP, BASE << min(fails - threshold, 7))


def retry_after(lock_until, now):
    """Seconds left of a lock, or 0 when the party may try again."""
    return lock_until - now if lock_until > now else 0


class Stations:
    """Failure counts per station address, bounded so a flood of addresses cannot fill RAM."""

    def __init__(self, cap=32):
        self.cap = cap
        self._d = {}  # addr -> [fails, lock_until]

    def locked(self, addr, now):
        e = self._d.get(addr)
        return retry_after(e[1], now) if e else 0

    def fail(self, addr, now):
        e = self._d.get(addr)
        if e is None:
            if len(self._d) >= self.cap:  # forget the entry whose lock ends first
                del self._d[min(self._d, key=lambda a: self._d[a][1])]
            e = self._d[addr] = [0, 0]
        e[0] += 1
        e[1] = lock_after(e[0], STATION_THRESHOLD, now)

    def ok(self, addr):
        self._d.pop(addr, None)
