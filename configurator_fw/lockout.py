# Lockout with growing back-off, in RAM, for devices (by id, enrolled or not) and stations.
#
# Kept in RAM on purpose: a failed attempt costs no flash write (no wear an attacker can
# cause), and an unknown id is counted exactly like an enrolled one, so lockout cannot tell
# them apart (PROTOCOL.md s.5). A restart of the box clears the counts; the TOTP steps already
# used stay persisted, so nothing is ever accepted twice.
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


class Parties:
    """Consecutive failures per party (a device id or a station address), bounded: when full,
    the entry whose lock ends first (an unlocked one, usually) is forgotten."""

    def __init__(self, threshold, cap=64):
        self.threshold = threshold
        self.cap = cap
        self._d = {}  # party -> [fails, lock_until]

    def locked(self, party, now):
        e = self._d.get(party)
        return retry_after(e[1], now) if e else 0

    def fail(self, party, now):
        e = self._d.get(party)
        if e is None:
            if len(self._d) >= self.cap:
                del self._d[min(self._d, key=lambda a: self._d[a][1])]
            e = self._d[party] = [0, 0]
        e[0] += 1
        e[1] = lock_after(e[0], self.threshold, now)

    def ok(self, party):
        self._d.pop(party, None)


class Budget:
    """Wrong guesses the box as a whole allows, whatever station they come from: ``burst`` at
    once, then one more per ``every`` seconds (a token bucket, in RAM)."""

    def __init__(self, burst, every):
        self.burst = burst
        self.every = every
        self.tokens = burst
        self.at = None  # when the last token was counted in

    def _fill(self, now):
        if self.at is None or self.tokens >= self.burst:
            self.at = now
            return
        gained = (now - self.at) // self.every
        if gained > 0:
            self.tokens = min(self.burst, self.tokens + gained)
            self.at += gained * self.every

    def wait(self, now):
        """Seconds until a guess is allowed again (0: now)."""
        self._fill(now)
        return 0 if self.tokens > 0 else self.at + self.every - now

    def spend(self, now):
        self._fill(now)
        if self.tokens > 0:
            self.tokens -= 1
