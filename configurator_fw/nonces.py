# Bounded tables of single-use, expiring entries: server nonces and sessions.


class Table:
    """At most ``cap`` live entries, each expiring ``ttl`` seconds after it was made."""

    def __init__(self, cap, ttl):
        self.cap = cap
        self.ttl = ttl
        self._d = {}

    def _sweep(self, now):
        for k in [k for k, (t, _) in self._d.items() if now - t >= self.ttl]:
            del self._d[k]

    def add(self, key, value, now):
        """Store; False when the table is full of live entries (the caller answers 503)."""
        self._sweep(now)
        if len(self._d) >= self.cap:
            return False
        self._d[key] = (now, value)
        return True

    def take(self, key, now):
        """Remove and return the live value for ``key`` (single use), or None."""
        return self._live(self._d.pop(key, None), now)

    def get(self, key, now):
        return self._live(self._d.get(key), now)

    def _live(self, item, now):
        if item is None or not 0 <= now - item[0] < self.ttl:
            return None
        return item[1]

    def retry_after(self, now):
        """Seconds until the oldest entry expires."""
        return max(1, min(self.ttl - (now - t) for t, _ in self._d.values()))

    def __len__(self):
        return len(self._d)
