# The admin page's API (docs/openapi.yaml, /admin/api/...): login, sessions, CSRF, lockout, and
# the operator's actions on the box. The page itself is page.py.
#
# A session (sessions.py) is a random 128-bit cookie; every change also needs the session's CSRF
# token in X-CSRF-Token, and a request whose Origin is not the box's own is refused. Logging in
# runs PBKDF2 over the passphrase (on a sealed box that is the unlock) a slice at a time, so
# devices are served meanwhile; only one login runs at once, and failures lock the station out
# with a growing back-off.
import asyncio
import gc
import json
import os

from configurator_fw import lockout, sessions, vault
from configurator_fw.app import TooMany
from configurator_fw.store import StoreError, Tampered, valid_id
from configurator_fw.store_devices import Refused
from configurator_fw.store_devices import (F_BEHIND, F_FAILED, F_NEVER, F_STATE, F_TAMPERED,
                                           STATES)
from configurator_fw.timekeeper import EARLIEST, LATEST, Behind, ClockError, FarAhead
from shared import base32, config, otpauth, passphrase, protocol

COOKIE = sessions.COOKIE
MASK = "********"
_SECRET_KEYS = ("password", "psk", "key", "secret", "token")
_SLICE = 250  # PBKDF2 iterations between two turns of the event loop
MAX_DEPTH = 24  # JSON nesting of an admin request (a config nests up to 16)
ADMIN_BODY = 8192  # bytes of an admin request body, for a logged-in browser (server.py)
# JSON values (members and items) in an admin request body: parsed, 8 KB of small values
# would take more heap than the box has beside its fleet (a 413, as a cap of the transport)
MAX_VALUES = 256
_LARGE = ("/admin/api/defaults", "/admin/api/overrides")  # the routes that take ADMIN_BODY
# wrong passphrases the box takes in all: 10 at once, then one per 6 minutes (240 a day)
GUESS_BURST = 10
GUESS_EVERY = 360
_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store",
         "X-Content-Type-Options": "nosniff"}


# Each POST's body as docs/openapi.yaml gives it: its required fields and its optional ones, each
# of a kind. A field of another kind, a missing one or any other field is a 400 before anything
# is done (a request that fits its schema is never a 400: the box's own rules answer 404, 409 or
# 422, docs/OPERATOR.md).
_TEXT, _TIME, _BOOL, _OBJ, _DEV = "text", "time", "bool", "obj", "dev"
_BODIES = {
    "login": ({"passphrase": _TEXT}, {"time": _TIME, "confirm_time": _BOOL}),
    "logout": ({}, {}), "lock": ({}, {}),
    "enroll": ({"dev": _DEV}, {}), "rekey": ({"dev": _DEV}, {}), "revoke": ({"dev": _DEV}, {}),
    "defaults": ({"config": _OBJ}, {}),
    "overrides": ({"dev": _DEV, "config": _OBJ}, {}),
    "passphrase": ({"old": _TEXT, "new": _TEXT}, {}),
    "auto-unseal": ({"on": _BOOL}, {}),
    "clock": ({"time": _TIME}, {"confirm_time": _BOOL}),
}


def _fits(kind, v):
    if kind == _TEXT:
        return isinstance(v, str) and 0 < len(v) <= passphrase.MAX_LEN
    if kind == _TIME:
        return protocol.wire_int(v, EARLIEST, LATEST) is not None
    if kind == _BOOL:
        return isinstance(v, bool)
    if kind == _OBJ:
        return isinstance(v, dict)
    return valid_id(v)


_KINDS = {_TEXT: "a text of 1 to %d characters" % passphrase.MAX_LEN,
          _TIME: "Unix seconds, %d to %d" % (EARLIEST, LATEST), _BOOL: "true or false",
          _OBJ: "a JSON object", _DEV: "1 to 32 of A-Z a-z 0-9 - _"}


def check_body(name, body):
    """ValueError (a 400's message) unless ``body`` has exactly the fields of request ``name``,
    each of its kind."""
    need, may = _BODIES[name]
    for k in body:
        if k not in need and k not in may:
            raise ValueError("%s: not a field of this request" % json.dumps(k[:32]))
    for k in need:
        if k not in body:
            raise ValueError("%s: missing" % k)
    for k, v in body.items():
        kind = need.get(k) or may[k]
        if not _fits(kind, v):
            raise ValueError("%s: %s" % (k, _KINDS[kind]))


def audit_answer(log):
    """The audit log's answer, an entry at a time (40 entries of up to 120 characters would be
    one block of several KB)."""
    yield '{"entries":['
    for i, e in enumerate(log.newest()):
        yield ("," if i else "") + json.dumps(e)
    yield "]}"


def check_query(name, args):
    """ValueError (a 400's message) unless the GET's query fits docs/openapi.yaml (the
    overview's own are checked by _Query)."""
    if name == "config":
        dev = args.get("dev")
        if dev is not None and not valid_id(dev):
            raise ValueError("dev: " + _KINDS[_DEV])
        if args.get("merged") not in (None, "1"):
            raise ValueError("merged: 1 or absent")


def _answer(status, obj, extra=None):
    h = dict(_JSON)
    if extra:
        h.update(extra)
    return json.dumps(obj), status, h


def json_pieces(obj, out=None):
    """``obj`` as JSON text, in pieces of a few hundred bytes (an answer streamed as it is
    made: a config of 8 KB would be one block of 8 KB, then another for its bytes)."""
    top = out is None
    out = [] if top else out
    if isinstance(obj, dict):
        out.append("{")
        for i, (k, v) in enumerate(obj.items()):
            out.append((", " if i else "") + json.dumps(k) + ": ")
            yield from json_pieces(v, out)
        out.append("}")
    elif isinstance(obj, list):
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(", ")
            yield from json_pieces(v, out)
        out.append("]")
    else:
        out.append(json.dumps(obj))
    if sum(len(p) for p in out) >= 256 or (top and out):
        piece = "".join(out)
        out.clear()
        yield piece


def primed(gen):
    """``gen`` with its first piece made now: whatever fails before it (a file, memory) fails
    in the route, which answers it, not after the answer's head has gone out."""
    first = next(gen)

    def chain():
        yield first
        yield from gen
    return chain()


def _streamed(status, obj):
    return primed(json_pieces(obj)), status, _JSON


def _error(status, msg, extra=None):
    return _answer(status, {"error": msg}, extra)


def _ip(n):
    return "%d.%d.%d.%d" % (n >> 24, n >> 16 & 255, n >> 8 & 255, n & 255) if n else None


class _Query:
    """The overview's query: ?page=&per=&state=&sort=&q= (docs/openapi.yaml)."""

    FILTERS = ("all", "failed", "behind", "never", "locked", "enrolled", "provisioned",
               "revoked", "tampered")
    SORTS = ("slot", "failed", "seen", "ver")
    PER = 100

    def __init__(self, args):
        def num(name, default, lo, hi):
            v = args.get(name)
            if v is None:
                return default
            if not (isinstance(v, str) and v.isdigit() and len(v) <= 6 and lo <= int(v) <= hi):
                raise ValueError("%s: a number from %d to %d" % (name, lo, hi))
            return int(v)

        self.page = num("page", 0, 0, 100000)
        self.per = num("per", 50, 1, self.PER)
        self.state = args.get("state", "all")
        if self.state not in self.FILTERS:
            raise ValueError("state: one of " + ", ".join(self.FILTERS))
        self.sort = args.get("sort", "slot")
        if self.sort not in self.SORTS:
            raise ValueError("sort: one of " + ", ".join(self.SORTS))
        self.q = args.get("q") or ""
        if len(self.q) > 32:
            raise ValueError("q: at most 32 characters")

    def match(self, f, locked):
        s = self.state
        if s == "all":
            return True
        if s == "failed":
            return bool(f & (F_FAILED | F_TAMPERED))
        if s == "behind":
            return bool(f & F_BEHIND)
        if s == "never":
            return bool(f & F_NEVER)
        if s == "locked":
            return locked
        if s == "tampered":
            return bool(f & F_TAMPERED)
        return not f & F_TAMPERED and STATES[f & F_STATE] == s


def mask(obj, secret=False):
    """``obj`` with every secret string (a key named like a secret, or under api_keys)
    replaced by MASK: what the page shows."""
    if isinstance(obj, dict):
        return {k: mask(v, secret or k in _SECRET_KEYS or k == "api_keys")
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask(v, secret) for v in obj]
    return MASK if secret and isinstance(obj, str) else obj


def unmask(new, old, where="config"):
    """``new`` as edited on the page, its MASK values put back from ``old`` (the stored
    object); a MASK with nothing to keep is an error naming the key."""
    if new == MASK:
        if not isinstance(old, str):
            raise Refused("%s: %s keeps a secret that is not set; type the value" %
                             (where, MASK))
        return old
    if isinstance(new, dict):
        o = old if isinstance(old, dict) else {}
        return {k: unmask(v, o.get(k), where + "." + k) for k, v in new.items()}
    if isinstance(new, list):
        o = old if isinstance(old, list) else []
        return [unmask(v, o[i] if i < len(o) else None, "%s[%d]" % (where, i))
                for i, v in enumerate(new)]
    return new


class Admin:
    @staticmethod
    def body_cap(target):
        """The body cap of a logged-in request to ``target``: a config edit's, ADMIN_BODY; any
        other admin request's body is small (None: the transport's own, 2048)."""
        return ADMIN_BODY if target.split("?")[0] in _LARGE else None

    def __init__(self, box, log=print):
        self.box = box
        self.log = log
        self.sessions = sessions.Sessions()
        self._now = self.sessions.now  # the tick counter's seconds: lockouts too
        self.fails = lockout.Parties(5, 16)  # by station
        # and for the box as a whole (docs/SEALING.md): while sealed (its AP needs the sealed
        # AP's key) and while unlocked (the fleet's AP, whose key every client holds) apart, so
        # guesses on the fleet's AP never use up the sealed AP's, where the operator unlocks
        self.budgets = {True: lockout.Budget(GUESS_BURST, GUESS_EVERY),
                        False: lockout.Budget(GUESS_BURST, GUESS_EVERY)}
        self.busy = False  # a PBKDF2 login is running

    # -- sessions
    def session(self, request, touch=True):
        return None if self.box.sealed else self.sessions.get(request.cookies.get(COOKIE), touch)

    def logged_in(self, headers):
        """For the transport, before a body is read: does this request carry a live session?
        (Only then may its body be up to ADMIN_BODY bytes.)"""
        return not self.box.sealed and self.sessions.live(sessions.cookie_of(headers))

    def guard(self, request, change=True):
        """None if the request may go on, else the error answer (401, 403)."""
        # the page's own polling (GET fleet, audit) does not keep a session alive
        s = self.session(request, change or request.path.endswith("/config"))
        if s is None:
            return _error(401, "sealed" if self.box.sealed else "log in")
        if change and not (sessions.same_origin(request.headers) and self.sessions.csrf_ok(
                s, request.headers.get("X-CSRF-Token", ""))):
            self.box.audit.add("csrf-refused", request.path, False)
            return _error(403, "CSRF token missing or wrong: reload the page")
        return None

    # -- login / unlock
    async def login(self, request, body):
        station = request.client_addr[0] if isinstance(request.client_addr, tuple) else "?"
        now = self._now()
        wait = self.fails.locked(station, now)
        if wait:
            return _error(429, "too many wrong passphrases: wait %d s" % wait,
                          {"Retry-After": str(wait)})
        budget = self.budgets[self.box.sealed]
        wait = budget.wait(now)
        if wait:
            return _error(429, "the box takes no more passphrase guesses for now: wait %d s"
                          % wait, {"Retry-After": str(wait)})
        if not sessions.same_origin(request.headers):
            return _error(403, "cross-site login refused")
        pw = body["passphrase"]
        t = body.get("time")
        if self.busy:
            return _error(503, "another login is running", {"Retry-After": "10"})
        self.busy = True
        try:
            st, finish = vault.unwrap_stepper(self.box.board, pw)
            while not st.step(_SLICE):
                await asyncio.sleep_ms(0)  # devices are served between slices
            key = finish()
        except vault.WrongPassphrase:
            self.fails.fail(station, self._now())
            budget.spend(self._now())
            locked = self.fails.locked(station, self._now())
            self.box.audit.add("login-failed", "from %s%s" % (
                station, "; locked for %d s" % locked if locked else ""), False)
            return _error(401, "wrong passphrase")
        finally:
            self.busy = False
        self.fails.ok(station)
        if self.box.sealed:
            try:
                self.box.unseal(key, protocol.wire_int(t, EARLIEST, LATEST),
                                body.get("confirm_time") is True)
            except Tampered as e:
                return _error(503, "the store fails its MAC: %s" % e)
            except (FarAhead, Behind) as e:
                return _error(409, "time: %s" % e)
            except ClockError as e:
                return _error(400, "time: %s" % e)
            self.box.audit.add("unlocked", "from %s" % station)
        else:
            self.box.audit.add("login", "from %s" % station)
        del key
        gc.collect()
        csrf, cookie = self.sessions.new()
        return _answer(200, {"csrf": csrf, "sealed": False}, {"Set-Cookie": cookie})

    def state(self, request):
        s = self.session(request)
        b = self.box
        out = {"box": b.meta["box"], "sealed": b.sealed, "logged_in": s is not None,
               "now": b.board.unix_now()}
        if s is not None:
            out["csrf"] = s[1]
            out["clock_ok"] = b.clock_trusted()
            out["ssid"] = b.meta["ssid"]
            out["auto_unseal"] = vault.auto_key(b.board) is not None
        return _answer(200, out)

    def logout(self, request):
        self.sessions.end(request.cookies.get(COOKIE))
        return _answer(200, {"ok": True}, {"Set-Cookie": sessions.LOGOUT_COOKIE})

    def lock(self, request):
        self.sessions.clear()
        self.box.audit.add("locked", "from the admin page")
        self.box.seal()
        return _answer(200, {"sealed": True})

    # -- the fleet
    def fleet(self, args):
        """The fleet overview, a page at a time (1,000 devices would not fit the heap as one
        answer): exact counts over the whole fleet from the flags the store keeps in RAM, then
        the page's rows, filtered, searched and sorted, each read from its record as it goes
        out. Returns an error answer or (generator, 200, headers)."""
        try:
            q = _Query(args)
        except ValueError as e:
            return _error(400, str(e))
        return primed(self._fleet(q)), 200, _JSON

    def _locked(self, now):
        """{slot: seconds} of enrolled devices locked out now (the lockout table: 64 at most)."""
        store, out = self.box.store, {}
        for dev in list(self.box.api.ids._d):
            wait = self.box.api.ids.locked(dev, now)
            if wait and valid_id(dev):
                for slot in store.recs.candidates(dev):
                    if store.secrets.read(slot)[0] == dev:
                        out[slot] = wait
        return out

    def _fleet(self, q):
        store, api = self.box.store, self.box.api
        recs = store.recs
        now = self.box.board.unix_now()
        locked = self._locked(now)
        flags = recs.flags
        counts = {}
        extra = {"failed": 0, "behind": 0, "never": 0, "locked": len(locked)}
        for s in range(recs.used):
            f = flags[s]
            if not f:
                continue  # a slot not given out
            st = "tampered" if f & F_TAMPERED else STATES[f & F_STATE]
            counts[st] = counts.get(st, 0) + 1
            extra["failed"] += 1 if f & (F_FAILED | F_TAMPERED) else 0
            extra["behind"] += 1 if f & F_BEHIND else 0
            extra["never"] += 1 if f & F_NEVER else 0
        found = store.search(q.q) if q.q else None  # the flash read only for a search
        slots = [s for s in (range(recs.used) if found is None else found)
                 if flags[s] and q.match(flags[s], s in locked)]
        del found
        # sorted as small ints that carry their slot (no list of keys beside them)
        if q.sort == "failed":
            for i, s in enumerate(slots):
                f = flags[s]
                slots[i] = (0 if f & (F_FAILED | F_TAMPERED) else 1 if f & F_BEHIND else 2) \
                    << 10 | s
        elif q.sort in ("seen", "ver"):
            store.sort_keys(slots, q.sort, now)
        slots.sort()
        gc.collect()  # the live heap at its largest: the fleet's slots listed and sorted
        low = gc.mem_free()
        total = len(slots)
        page = [s & 0x3FF for s in slots[q.page * q.per:(q.page + 1) * q.per]]
        del slots
        drev = store.verified_defaults_rev()
        yield '{"devices":['
        for i, slot in enumerate(page):
            if i == 1:  # a row made and sent, its group's statuses held
                gc.collect()
                low = min(low, gc.mem_free())
            try:
                dev, r = recs.read(slot)
            except Tampered:
                dev, r = store._name_of(slot) or "slot-%d" % slot, None
            st = (api._pending.get(dev) or store.status.get(slot, dev)) if r else None
            st = st if isinstance(st, dict) else {}
            if r and flags[slot] & F_TAMPERED:  # its record disagrees with box.json
                r = None
            row = {"dev": dev, "state": r["state"] if r else "tampered",
                   "seen": r["seen"] if r else 0, "ack": r["ack"] if r else 0,
                   "ver": max(drev, r["orev"]) if r else 0, "ahead": r["ahead"] if r else 0,
                   "ip": _ip(r["ip"]) if r else None, "locked": locked.get(slot, 0),
                   "err": st.get("err"), "heap": st.get("heap"), "rssi": st.get("rssi"),
                   "fw": st.get("fw")}
            yield ("," if i else "") + json.dumps(row)
        del page
        gc.collect()
        low = min(low, gc.mem_free())
        yield ('],"total":%d,"page":%d,"per":%d,"clock_ok":%s,"now":%d,"rev":%d,"counts":%s,'
               '"flags":%s,"flash":%s,"mem":{"free":%d,"used":%d,"low":%d}}') % (
            total, q.page, q.per, "true" if api.clock_ok else "false", now, drev,
            json.dumps(counts), json.dumps(extra), json.dumps(store.flash()), gc.mem_free(),
            gc.mem_alloc(), low)

    def enroll(self, dev, rekey=False):
        store = self.box.store
        b = store.rekey(dev) if rekey else store.enroll(dev)
        self.box.api.enrolled(dev)
        m = store.meta
        boot = {"dev": dev, "dk": b["dk"].hex(), "totp": b["totp"].hex(), "ssid": m["ssid"],
                "psk": store.psk(), "box": m["box"]}
        if m["port"] != 80:
            boot["port"] = m["port"]
        self.box.audit.add("re-keyed" if rekey else "enrolled", dev)
        return _answer(200, {"dev": dev, "bootstrap": boot,
                             "totp_b32": base32.encode(b["totp"], False),
                             "uri": otpauth.build_uri(b["totp"], dev, m["box"])})

    def revoke(self, dev):
        self.box.store.revoke(dev)
        self.box.api.revoked(dev)
        self.box.audit.add("revoked", dev)
        return _answer(200, {"dev": dev, "state": "revoked"})

    def get_config(self, dev, merged=False):
        store = self.box.store
        if merged:  # what the device receives: defaults and its overrides merged
            if not dev or store.device(dev) is None:
                return _error(404, "no device %s" % dev)
            try:
                ver, raw = store.config(dev)
                obj = json.loads(raw)
                n = len(raw)
                del raw
            except MemoryError:
                gc.collect()
                return _error(503, "too large to merge here: `fleet show %s` shows it" % dev,
                              {"Retry-After": "5"})
            return _streamed(200, {"dev": dev, "config": mask(obj), "rev": ver, "merged": True,
                                   "size": n, "cap": protocol.MAX_CONFIG})
        if dev:
            if store.device(dev) is None:
                return _error(404, "no device %s" % dev)
            obj = store.overrides(dev)
        else:
            obj = store.defaults()
        return _streamed(200, {"dev": dev, "config": mask(obj), "rev": store.version(dev) if dev
                               else store.verified_defaults_rev()})

    def set_config(self, dev, obj):
        store = self.box.store
        try:
            if dev:
                if store.device(dev) is None:
                    return _error(404, "no device %s" % dev)
                obj = unmask(obj, store.overrides(dev), "overrides")
                store.set_overrides(dev, obj)
                what = "overrides of " + dev
            else:
                obj = unmask(obj, store.defaults(), "defaults")
                store.set_defaults(obj)
                what = "defaults"
        except config.ConfigError as e:
            return _error(422, str(e))
        except StoreError as e:
            return _error(e.status, str(e))
        rev = store.version(dev) if dev else store.verified_defaults_rev()
        self.box.api.changed(dev)
        self.box.audit.add("config-changed", "%s, now version %d" % (what, rev))
        return _answer(200, {"dev": dev, "rev": rev})

    def change_passphrase(self, request, body):
        old, new = body["old"], body["new"]
        if len(new) < passphrase.MIN_LEN:
            return _error(400, "new: at least %d characters" % passphrase.MIN_LEN)
        try:
            passphrase.check(new)
        except passphrase.WeakPassphrase as e:
            return _error(422, "new: %s" % e)
        try:
            key = vault.unwrap(self.box.board, old)
        except vault.WrongPassphrase:
            self.box.audit.add("passphrase-refused", "old passphrase wrong")
            return _error(403, "old: wrong passphrase")
        vault.wrap(self.box.board, key, new)
        self.sessions.end_others(request.cookies.get(COOKIE))  # other browsers log in anew
        self.box.audit.add("passphrase-changed", "the vault key is sealed under the new one")
        return _answer(200, {"ok": True})

    def auto_unseal(self, on):
        vault.set_auto(self.box.board, self.box.store.v.key if on else None)
        self.box.audit.add("auto-unseal", "on" if on else "off")
        return _answer(200, {"auto_unseal": bool(on)})

    def set_clock(self, t, confirmed):
        unix = protocol.wire_int(t, EARLIEST, LATEST)
        try:
            why = self.box.set_clock(unix, confirmed)
        except (FarAhead, Behind) as e:
            return _error(409, "time: %s" % e)
        except ClockError as e:
            return _error(400, "time: %s" % e)
        self.box.audit.add("clock-set", why)
        return _answer(200, {"now": self.box.board.unix_now()})


def add_routes(app, box, parse, log=print):
    """The admin API's routes on ``app``; ``parse(request)`` gives the JSON body or raises
    ValueError. Returns the Admin."""
    adm = Admin(box, log)
    from configurator_fw import page

    @app.route("/admin", methods=["GET"])
    async def admin_page(request):
        return page.HTML, 200, page.HEADERS

    @app.route("/admin/api/session", methods=["GET"])
    async def session(request):
        return adm.state(request)

    def guarded(handler):
        """``handler``'s answer, or a 503 with one line on the console: microdot would print
        a traceback for anything a route raises."""
        async def route(request):
            try:
                return await handler(request)
            except MemoryError:
                gc.collect()
                log("cfgbox: out of memory in %s; answered 503" % request.path)
                return _error(503, "the box's memory is busy: try again", {"Retry-After": "2"})
            except Exception as e:  # noqa: BLE001 - one line to the console, never a traceback
                log("cfgbox: %s in %s: %s" % (type(e).__name__, request.path, e))
                return _error(503, "unavailable", {"Retry-After": "5"})
        return route

    async def _login(request):
        try:
            body = parse(request)
            check_body("login", body)
        except TooMany as e:
            return _error(413, str(e))
        except ValueError as e:
            return _error(400, str(e))
        return await adm.login(request, body)

    app.route("/admin/api/login", methods=["POST"])(guarded(_login))

    def action(name, fn, change=True):
        async def _route(request):
            refused = adm.guard(request, change)
            if refused:
                return refused
            try:
                if change:
                    body = parse(request)
                    check_body(name, body)
                else:
                    body = {}
                    check_query(name, request.args)
            except TooMany as e:
                return _error(413, str(e))
            except ValueError as e:
                return _error(400, str(e))
            try:
                return fn(request, body)
            except StoreError as e:
                return _error(e.status, str(e))
        return guarded(_route)

    def dev_of(body):
        return body["dev"]

    for path, fn, change in (
            ("logout", lambda r, b: adm.logout(r), True),
            ("lock", lambda r, b: adm.lock(r), True),
            ("fleet", lambda r, b: adm.fleet(r.args), False),
            ("audit", lambda r, b: (audit_answer(box.audit), 200, _JSON), False),
            ("config", lambda r, b: adm.get_config(r.args.get("dev"),
                                                    r.args.get("merged") == "1"), False),
            ("generate", lambda r, b: _answer(200, {"passphrase": passphrase.generate(
                os.urandom)}), False),
            ("enroll", lambda r, b: adm.enroll(dev_of(b)), True),
            ("rekey", lambda r, b: adm.enroll(dev_of(b), True), True),
            ("revoke", lambda r, b: adm.revoke(dev_of(b)), True),
            ("defaults", lambda r, b: adm.set_config(None, b.get("config")), True),
            ("overrides", lambda r, b: adm.set_config(dev_of(b), b.get("config")), True),
            ("passphrase", lambda r, b: adm.change_passphrase(r, b), True),
            ("auto-unseal", lambda r, b: adm.auto_unseal(b["on"]), True),
            ("clock", lambda r, b: adm.set_clock(b["time"], b.get("confirm_time") is True),
             True)):
        app.route("/admin/api/" + path, methods=["POST" if change else "GET"])(
            action(path, fn, change))
    return adm
