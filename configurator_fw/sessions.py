# The admin page's sessions: random cookies, their CSRF tokens, and when they end.
#
# A session ends 10 minutes after the operator's last action and 8 hours after its login,
# timed on the board's tick counter (setting the clock neither ends nor prolongs one). At most
# SESSIONS at once: a new login ends the oldest. Nothing here is persisted.
import os
import time

from shared.ct import equal

COOKIE = "cfgbox_s"
TTL = 600  # seconds a session lives after the operator's last action (not the page's polling)
MAX_AGE = 8 * 3600  # and at most this long after its login
SESSIONS = 3

if hasattr(time, "ticks_ms"):
    _ticks, _diff = time.ticks_ms, time.ticks_diff
else:  # pragma: no cover - CPython (the OpenAPI check builds the routes there)
    def _ticks():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b


class Mono:
    """Seconds since start on the board's tick counter (call it at least every few days: the
    counter's differences are valid for about six)."""

    def __init__(self):
        self.last = _ticks()
        self.ms = 0

    def __call__(self):
        t = _ticks()
        self.ms += max(0, _diff(t, self.last))
        self.last = t
        return self.ms // 1000


def cookie_of(headers):
    """The session cookie's value in a request's headers, or None (read before the body)."""
    for part in headers.get("Cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


class Sessions:
    def __init__(self, now=None):
        self.now = now or Mono()
        self._d = {}  # token -> [idle deadline, csrf, hard end]

    def new(self):
        """(csrf token, Set-Cookie value) of a new session."""
        while len(self._d) >= SESSIONS:
            del self._d[min(self._d, key=lambda t: self._d[t][0])]
        tok, csrf = os.urandom(16).hex(), os.urandom(16).hex()
        now = self.now()
        self._d[tok] = [now + TTL, csrf, now + MAX_AGE]
        return csrf, "%s=%s; Path=/admin; Max-Age=%d; HttpOnly; SameSite=Strict" % (
            COOKIE, tok, MAX_AGE)

    def get(self, tok, touch=True):
        """The live session [deadline, csrf, end] of cookie value ``tok``, or None; ``touch``
        (an action of the operator's) gives it ten more minutes, never past its end."""
        now = self.now()
        for t in [t for t, s in self._d.items() if s[0] <= now]:
            del self._d[t]
        s = self._d.get(tok) if tok else None
        if s is not None and touch:
            s[0] = min(now + TTL, s[2])
        return s

    def live(self, tok):
        s = self._d.get(tok) if tok else None
        return s is not None and s[0] > self.now()

    def csrf_ok(self, s, token):
        return equal(token.encode(), s[1].encode())

    def end(self, tok):
        self._d.pop(tok, None)

    def end_others(self, tok):
        for t in [t for t in self._d if t != tok]:
            del self._d[t]

    def clear(self):
        self._d.clear()


def same_origin(headers):
    """True unless the request says it comes from another site (a browser sends Origin with
    every cross-site POST and fetch)."""
    origin = headers.get("Origin")
    if origin is None:
        return True
    host = headers.get("Host", "")
    return origin in ("http://" + host, "https://" + host)


LOGOUT_COOKIE = "%s=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict" % COOKIE
