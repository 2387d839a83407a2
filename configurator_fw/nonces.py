# Bounded tables of single-use, expiring entries: server nonces and sessions.


class Table:
    """At most ``cap`` live entries, each expiring ``ttl`` seconds after it was made, and at most
    ``per_owner`` of them for one owner (a station): an owner's newest entry replaces its
    oldest, and a full table gives up its oldest entry, so one station cannot fill it."""

    def __init__(self, cap, ttl, per_owner=None):
        self.cap = cap
        self.ttl = ttl
        self.per_owner = per_owner
        self._d = {}  # key -> (made, owner, value)

    def _sweep(self, now):
        for k in [k for k, e in self._d.items() if not 0 <= now - e[0] < self.ttl]:
            del self._d[k]

    def _drop_oldest(self, owner=None):
        keys = [k for k, e in self._d.items() if owner is None or e[1] == owner]
        if keys:
            del self._d[min(keys, key=lambda k: self._d[k][0])]

    def add(self, key, value, now, owner=None):
        """Store ``value``; room is made by dropping the owner's, else the table's, oldest."""
        self._sweep(now)
        if self.per_owner is not None and owner is not None:
            while sum(1 for e in self._d.values() if e[1] == owner) >= self.per_owner:
                self._drop_oldest(owner)
        if len(self._d) >= self.cap:
            self._drop_oldest()
        self._d[key] = (now, owner, value)

    def take(self, key, now):
        """Remove and return the live value for ``key`` (single use), or None."""
        return self._live(self._d.pop(key, None), now)

    def get(self, key, now):
        return self._live(self._d.get(key), now)

    def _live(self, item, now):
        if item is None or not 0 <= now - item[0] < self.ttl:
            return None
        return item[2]

    def drop(self, match):
        """Remove every entry whose value ``match(value)`` says so."""
        for k in [k for k, e in self._d.items() if match(e[2])]:
            del self._d[k]

    def __len__(self):
        return len(self._d)
