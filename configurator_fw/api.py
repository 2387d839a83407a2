# The device API of docs/PROTOCOL.md (v2) as pure functions: parsed body, station, time -> answer.
#
# What every exchange needs stays in RAM (the master key, the defaults' revision, an index of
# the enrolled ids' slots, lockout counts, the live status of recent devices), so a
# steady-state exchange reads one fixed-size secrets entry (hello) and one fixed-size record,
# and rewrites that record in place at auth, before the answer leaves: the same whatever the
# fleet's size (docs/STORE.md). An id the box does not know takes the same path with decoy keys
# and reads an enrolled device's entries, so neither answers, lockout nor timing tell enrolled
# ids.
import json
import os

from configurator_fw import lockout
from configurator_fw.compose import compose
from configurator_fw.nonces import Table
from configurator_fw.store import Tampered, valid_id
from configurator_fw.store_devices import err_hash
from shared import otp, protocol
from shared.sealedbox import SealKey, SealWriter

_V = protocol.VERSION
UNAUTHORIZED = (401, {"v": _V, "error": "unauthorized"}, None)
_FIELDS = {  # every field a request may carry, "v" included: anything else is refused
    protocol.HELLO: ("v", "dev", "cn"),
    protocol.AUTH: ("v", "dev", "cn", "sn", "c", "dp"),
    protocol.CONFIG: ("v", "sid", "have", "m"),
    protocol.ACK: ("v", "sid", "ver", "st", "m"),
}
NONCES = 16
NONCES_PER_STATION = 2
SESSIONS = 10
TTL = 60


class BadRequest(ValueError):
    pass


_LOWER_HEX = "0123456789abcdef"


def _lower_hex(v, n):
    """``v`` is a string of 2 * ``n`` lowercase hex digits (s.0: every byte string is)."""
    return isinstance(v, str) and len(v) == 2 * n and all(c in _LOWER_HEX for c in v)


def _hex(body, name, n):
    v = body.get(name)
    if not _lower_hex(v, n):
        raise BadRequest(name)
    return bytes.fromhex(v)


def _int(body, name, hi=(1 << 31) - 1):
    v = protocol.wire_int(body.get(name), 0, hi)
    if v is None:
        raise BadRequest(name)
    return v


def _mac_field(body, name):
    # its shape only (64 hex digits); whether it is right is checked in constant time later
    v = body.get(name)
    if not _lower_hex(v, protocol.MAC_LEN):
        raise BadRequest(name)
    return v


def _locked(seconds):
    return 429, {"v": _V, "error": "locked"}, {"Retry-After": str(seconds)}


def ip_int(station):
    """A station's IPv4 address as an int (0 if it is not one): kept in the device's record."""
    try:
        parts = [int(p) for p in station.split(".")]
    except (AttributeError, ValueError):
        return 0
    if len(parts) != 4 or not all(0 <= p <= 255 for p in parts):
        return 0
    return (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]


_PENDING = 64  # live statuses held in RAM (the persisted one is the last that mattered)


class DeviceApi:
    def __init__(self, store, clock_ok=True, log=print, audit=None):
        self.store = store
        self.audit = audit  # audit(event, detail, persist) or None (audit.py)
        self.clock_ok = clock_ok  # False until a trusted source set the clock (PROTOCOL.md s.4)
        self.log = log
        self.nonces = Table(NONCES, TTL, NONCES_PER_STATION)
        self.sessions = Table(SESSIONS, TTL)
        self.stations = lockout.Parties(lockout.STATION_THRESHOLD, 32)
        self.ids = lockout.Parties(lockout.DEVICE_THRESHOLD, 64)  # enrolled or not, alike
        self._broken = None
        try:
            store.verified_defaults_rev()  # checked whole once, here at boot
        except Tampered as e:  # every device's config needs the defaults: serve none, say why
            self._broken = str(e)
            log("cfgbox: store: %s" % e)
        self._mk = store.master_key()
        self._box = store.meta["box"]
        self._pending = {}  # dev -> status reported at its last ack, when not persisted

    # -- the operator changed the store under a running box (admin page)
    def _forget(self, dev):
        """Nonces and sessions of ``dev`` made before the change hold its old keys and record:
        none may finish (an old ack would write the old record back)."""
        self.nonces.drop(lambda v: v[0] == dev)
        self.sessions.drop(lambda v: v["dev"] == dev)
        self._pending.pop(dev, None)

    def enrolled(self, dev):
        """``dev`` was enrolled or re-keyed (the store's index has it already)."""
        self._forget(dev)

    def revoked(self, dev):
        self._forget(dev)

    def changed(self, dev=None):
        """The defaults (``dev`` None) or ``dev``'s overrides changed: sessions made before
        carry the old version and record."""
        if dev is None:
            self.sessions.drop(lambda v: True)
        else:
            self._forget(dev)

    def handle(self, path, body, station, now):
        """Answer one request: (status, JSON-able dict or a generator of bytes, extra headers
        or None)."""
        fields = _FIELDS.get(path)
        if fields is None:
            return 404, {"v": _V, "error": "not found"}, None
        if not isinstance(body, dict):
            return 400, {"v": _V, "error": "bad request"}, None
        if protocol.wire_int(body.get("v")) != _V:  # 2.0 is 2 (s.0); true is not
            return 400, {"v": _V, "error": "version", "supported": [_V]}, None
        for name in body:
            if name not in fields:
                return 400, {"v": _V, "error": "unknown field"}, None
        wait = self.stations.locked(station, now)
        if wait:
            return _locked(wait)
        if self._broken:
            self.log("cfgbox: store: %s" % self._broken)
            return 503, {"v": _V, "error": "unavailable"}, {"Retry-After": "60"}
        fn = {protocol.HELLO: self.hello, protocol.AUTH: self.auth,
              protocol.CONFIG: self.config, protocol.ACK: self.ack}[path]
        try:
            return fn(body, station, now)
        except BadRequest as e:
            return 400, {"v": _V, "error": "bad field: " + str(e)}, None
        except Tampered as e:  # the box's own flash was altered: say so to the operator only
            self.log("cfgbox: store: %s" % e)
            return 503, {"v": _V, "error": "unavailable"}, {"Retry-After": "60"}

    def _refuse(self, station, now):
        """A 401 counted against the station only (no nonce of this id's was at stake)."""
        self.stations.fail(station, now)
        return UNAUTHORIZED

    def hello(self, body, station, now):
        dev = body.get("dev")
        if not valid_id(dev):
            raise BadRequest("dev")
        cn = _hex(body, "cn", protocol.NONCE_LEN)
        if not self.clock_ok:  # t would be a lie the device must not build on
            return 503, {"v": _V, "error": "clock"}, {"Retry-After": "60"}
        mk = self._mk
        found = self.store.lookup(dev)
        if found is not None:
            slot, secret = found
            dk = protocol.device_key(mk, dev)
        else:  # the same work: a key derivation, a secrets entry read and opened
            slot = self.store.decoy_slot(dev)
            dk = protocol.decoy_key(mk, dev)
            secret = self.store.decoy_secret(slot)
        k = protocol.long_term_key(dk, secret)
        sn = os.urandom(protocol.NONCE_LEN)
        # K, T and the slot ride with the nonce: auth, which must come with this sn, derives
        # and looks up neither
        self.nonces.add(sn, (dev, cn, station, k, secret, slot, found is not None), now,
                        station)
        box = self._box
        bp = protocol.mac(k, "cfgbox/2 box", box, dev, cn, sn, now)
        return 200, {"v": _V, "box": box, "sn": sn.hex(), "t": now, "bp": bp.hex()}, None

    def auth(self, body, station, now):
        dev = body.get("dev")
        if not valid_id(dev):
            raise BadRequest("dev")
        cn = _hex(body, "cn", protocol.NONCE_LEN)
        sn = _hex(body, "sn", protocol.NONCE_LEN)
        c = _int(body, "c", protocol.T_MAX // otp.STEP)
        dp = _mac_field(body, "dp")
        issued = self.nonces.take(sn, now)  # single use, whatever follows
        wait = self.ids.locked(dev, now)
        if wait:
            return _locked(wait)
        if not self.clock_ok:
            return 503, {"v": _V, "error": "clock"}, {"Retry-After": "60"}
        if issued is None or issued[:3] != (dev, cn, station):
            # not a nonce given to this id at this station: the station's failure only, so a
            # made-up sn cannot lock a device out
            return self._refuse(station, now)
        if issued[6]:
            rec = self.store.record(issued[5], dev)
        else:  # the same work: a record read and its MAC checked
            rec = self.store.decoy_record(issued[5])
        k, secret = issued[3], issued[4]
        sk = protocol.session_key(k, cn, sn, self._box, dev, c, protocol.code(secret, c))
        ok = protocol.mac_ok(sk, dp, "cfgbox/2 dev", self._box, dev, cn, sn, c)
        if not (ok and rec is not None and rec["state"] not in ("revoked", "tampered")
                and c in otp.steps(now, self.store.step_floor(rec))):
            self.stations.fail(station, now)
            self.ids.fail(dev, now)
            if self.audit:  # RAM only: the network must not be able to wear the flash
                locked = self.ids.locked(dev, now)
                self.audit("locked-out" if locked else "auth-failed",
                           "%s from %s%s" % (dev, station, " for %d s" % locked if locked
                                             else ""), False)
            return UNAUTHORIZED
        rec["ctr"], rec["seen"], rec["ip"] = c, now, ip_int(station)
        self.store.save_device(dev, rec)  # persisted before the answer leaves (the time floor too)
        self.stations.ok(station)
        self.ids.ok(dev)
        sid = os.urandom(protocol.NONCE_LEN)
        ver = max(self.store.verified_defaults_rev(), rec["orev"])
        self.sessions.add(sid, {"dev": dev, "sk": sk, "ver": None, "cur": ver, "rec": rec}, now)
        ap = protocol.mac(sk, "cfgbox/2 auth-ok", sid, dev, c)
        return 200, {"v": _V, "sid": sid.hex(), "ap": ap.hex()}, None

    def config(self, body, station, now):
        sid = _hex(body, "sid", protocol.NONCE_LEN)
        have = _int(body, "have")
        m = _mac_field(body, "m")
        s = self.sessions.get(sid, now)
        if s is None or s["ver"] is not None:  # one config per session
            return self._refuse(station, now)
        sk = s["sk"]
        if not protocol.mac_ok(sk, m, "cfgbox/2 config", sid, have):
            return self._refuse(station, now)
        dev = s["dev"]
        ver = s["cur"]  # known since auth: no file read to say "unchanged"
        s["ver"] = ver
        rec = s["rec"]
        if have > ver and rec.get("ahead", 0) < have:
            # the device holds a newer version than the box (a box restored from an older
            # backup, or rolled back): it will refuse ours; the operator sees it (admin.move_on)
            rec["ahead"] = have
            self.store.save_device(dev, rec)
            self.log("cfgbox: %s holds version %d, newer than the box's %d" % (dev, have, ver))
        if have == ver:
            m = protocol.mac(sk, "cfgbox/2 unchanged", sid, ver)
            return 200, {"v": _V, "ver": ver, "unchanged": True, "m": m.hex()}, None
        return 200, self._stream(dev, rec, sid, sk, ver), {
            "Content-Type": "application/octet-stream"}

    def _stream(self, dev, rec, sid, sk, ver):
        """The config answer's body, made as it is sent: ver (4 bytes) then the device's config
        (defaults composed with its overrides) sealed as a stream under the session key. Its
        files are opened and its buffers made before the first piece is given, so a box short
        of memory fails there, before the answer's head (app.py answers 503). The stored
        streams are verified as they are read, and the overrides' revision against the
        device's MACed record; if anything fails, the generator raises before the last block
        and tag: the transport cuts the answer off and the device stores nothing."""
        out = []
        rev, d_reader, d_sealed, f = self.store.open_defaults()
        o_file = None
        try:
            orev, o_reader, o_sealed, o_file = self.store.open_overrides(dev, rec["slot"])
            if rev != self.store.verified_defaults_rev() or orev != rec["orev"]:
                raise Tampered("the revisions of %s differ from its record" % dev)
            w = SealWriter(SealKey(sk), protocol.tr("cfgbox/2 cfg", sid, dev, ver),
                           lambda b: out.append(bytes(b)))
            yield ver.to_bytes(4, "big")
            for _ in compose(d_reader, o_reader, w.write):
                while out:  # a piece at a time: nothing of the config is gathered
                    yield out.pop(0)
            d_sealed.verify()
            if o_sealed:
                o_sealed.verify()
            w.close()
            while out:
                yield out.pop(0)
        finally:
            f.close()
            if o_file:
                o_file.close()

    def ack(self, body, station, now):
        sid = _hex(body, "sid", protocol.NONCE_LEN)
        ver = _int(body, "ver")
        st = body.get("st")
        if not isinstance(st, str) or len(st) > 512:
            raise BadRequest("st")
        m = _mac_field(body, "m")
        s = self.sessions.get(sid, now)
        if s is None or s["ver"] is None or s["ver"] != ver:
            return self._refuse(station, now)
        if not protocol.mac_ok(s["sk"], m, "cfgbox/2 ack", sid, ver, st):
            return self._refuse(station, now)
        self.sessions.take(sid, now)  # the session ends here
        try:
            status = json.loads(st)
        except ValueError:
            status = {"raw": st}
        if not isinstance(status, dict):
            status = {"raw": st}
        dev = s["dev"]
        rec = s["rec"]
        if rec["ack"] != ver or rec["state"] != "provisioned" or \
                err_hash(status.get("err")) != rec.get("eh", 0):
            # what the operator must see survives a reboot: a new version, a new error
            if self.audit and rec["ack"] != ver:
                self.audit("provisioned", "%s stored version %d" % (dev, ver), True)
            rec["ack"], rec["seen"], rec["state"] = ver, now, "provisioned"
            self._pending.pop(dev, None)
            self.store.save_status(dev, rec, status)
        else:  # the same state: the live status (heap, RSSI) is kept in RAM only
            if len(self._pending) >= _PENDING and dev not in self._pending:
                self._pending.pop(next(iter(self._pending)))
            self._pending[dev] = status
        m = protocol.mac(s["sk"], "cfgbox/2 ack-ok", sid, ver)
        return 200, {"v": _V, "ok": True, "m": m.hex()}, None
