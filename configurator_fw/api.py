# The device API of docs/PROTOCOL.md as pure functions: parsed body, station, time -> answer.
#
# What every exchange needs stays in RAM (the master key, the defaults' revision, which ids are
# enrolled, the last status of each device until its next write), so a steady-state exchange
# reads two small files and writes one: the device's state at auth, before the answer leaves.
import hashlib
import json
import os

from configurator_fw import lockout
from configurator_fw.compose import compose
from configurator_fw.nonces import Table
from configurator_fw.store import valid_id
from shared import otp, protocol
from shared.hkdf import expand, extract
from shared.sealedbox import SealKey, SealWriter

_V = protocol.VERSION
UNAUTHORIZED = (401, {"v": _V, "error": "unauthorized"}, None)


class BadRequest(ValueError):
    pass


def _hex(body, name, n):
    v = body.get(name)
    if not isinstance(v, str) or len(v) != 2 * n:
        raise BadRequest(name)
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise BadRequest(name) from None


def _int(body, name):
    v = body.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**31:
        raise BadRequest(name)
    return v


def _locked(seconds):
    return 429, {"v": _V, "error": "locked"}, {"Retry-After": str(seconds)}


def _id_hash(dev):
    # 30 bits: a small int, which MicroPython keeps in the list itself, not as an object
    return int.from_bytes(hashlib.sha256(dev.encode()).digest()[:4], "big") & 0x3FFFFFFF


_PENDING = 64  # statuses held in RAM until their device's next write


class DeviceApi:
    def __init__(self, store, clock_ok=True):
        self.store = store
        self.clock_ok = clock_ok  # False until a trusted source set the clock (PROTOCOL.md s.4)
        self.nonces = Table(16, 60)
        self.sessions = Table(10, 60)
        self.stations = lockout.Stations()
        self.defaults_rev = store.defaults_rev()
        self._mk = store.master_key()
        self._box = store.meta["box"]
        self._pending = {}  # dev -> status reported at its last ack, not yet written
        # 4 bytes per enrolled, unrevoked id, sorted: enough for hello to pick the real or the
        # decoy key without reading a file (a rare collision only answers with a real key)
        self._known = [_id_hash(d) for d, rec in store.devices() if rec["state"] != "revoked"]
        self._known.sort()

    def _is_known(self, dev):
        h = _id_hash(dev)
        k = self._known
        lo, hi = 0, len(k)
        while lo < hi:
            mid = (lo + hi) // 2
            if k[mid] == h:
                return True
            if k[mid] < h:
                lo = mid + 1
            else:
                hi = mid
        return False

    def handle(self, path, body, station, now):
        """Answer one request: (status, JSON-able dict, extra headers or None)."""
        if not isinstance(body, dict):
            return 400, {"v": _V, "error": "bad request"}, None
        if body.get("v") != _V:
            return 400, {"v": _V, "error": "version", "supported": [_V]}, None
        fn = {protocol.HELLO: self.hello, protocol.AUTH: self.auth,
              protocol.CONFIG: self.config, protocol.ACK: self.ack}.get(path)
        if fn is None:
            return 404, {"v": _V, "error": "not found"}, None
        wait = self.stations.locked(station, now)
        if wait:
            return _locked(wait)
        try:
            return fn(body, station, now)
        except BadRequest as e:
            return 400, {"v": _V, "error": "bad field: " + str(e)}, None

    def hello(self, body, station, now):
        dev = body.get("dev")
        if not valid_id(dev):
            raise BadRequest("dev")
        cn = _hex(body, "cn", protocol.NONCE_LEN)
        sn = os.urandom(protocol.NONCE_LEN)
        mk = self._mk
        key = protocol.device_key(mk, dev) if self._is_known(dev) else protocol.decoy_key(mk, dev)
        # the key rides with the nonce: auth, which must come with this sn, does not derive it
        if not self.nonces.add(sn, (dev, cn, station, key), now):
            return 503, {"v": _V, "error": "busy"}, {
                "Retry-After": str(self.nonces.retry_after(now))}
        box = self._box
        bp = protocol.mac(key, "cfgbox/1 box", box, dev, cn, sn, now)
        return 200, {"v": _V, "box": box, "sn": sn.hex(), "t": now, "bp": bp.hex()}, None

    def _fail(self, dev, rec, station, now):
        self.stations.fail(station, now)
        if rec is not None:
            rec["fails"] += 1
            rec["lock"] = lockout.lock_after(rec["fails"], lockout.DEVICE_THRESHOLD, now)
            self.store.save_device(dev, rec)
        return UNAUTHORIZED

    def auth(self, body, station, now):
        dev = body.get("dev")
        if not valid_id(dev):
            raise BadRequest("dev")
        cn = _hex(body, "cn", protocol.NONCE_LEN)
        sn = _hex(body, "sn", protocol.NONCE_LEN)
        dp = body.get("dp")
        if not isinstance(dp, str):
            raise BadRequest("dp")
        issued = self.nonces.take(sn, now)  # single use, whatever follows
        rec = self.store.device(dev)
        if rec is not None and lockout.retry_after(rec["lock"], now):
            return _locked(lockout.retry_after(rec["lock"], now))
        if not self.clock_ok:
            return 503, {"v": _V, "error": "clock"}, {"Retry-After": "60"}
        if issued is None or issued[:3] != (dev, cn, station) or rec is None \
                or rec["state"] == "revoked":
            return self._fail(dev, rec, station, now)
        dk = issued[3]  # the device key hello derived (a decoy's never reaches here: no record)
        secret = self.store.totp_secret(dev)
        box = self._box
        found = None
        prk = extract(cn + sn, dk)  # SK's extract step is the same for every candidate code
        for c in otp.steps(now, rec["ctr"]):
            sk = expand(prk, protocol.tr("cfgbox/1 session", box, dev, otp.hotp(secret, c)), 32)
            if protocol.mac_ok(sk, dp, "cfgbox/1 dev", box, dev, cn, sn) and found is None:
                found = (c, sk)
        if found is None:
            return self._fail(dev, rec, station, now)
        rec["ctr"], rec["fails"], rec["lock"], rec["seen"] = found[0], 0, 0, now
        rec["st"] = self._pending.pop(dev, rec["st"])
        self.store.save_device(dev, rec)  # persisted before the answer leaves (the time floor too)
        self.stations.ok(station)
        sid = os.urandom(protocol.NONCE_LEN)
        ver = max(self.defaults_rev, rec["orev"])
        s = {"dev": dev, "sk": found[1], "ver": None, "cur": ver, "rec": rec}
        if not self.sessions.add(sid, s, now):
            return 503, {"v": _V, "error": "busy"}, {
                "Retry-After": str(self.sessions.retry_after(now))}
        ap = protocol.mac(found[1], "cfgbox/1 auth-ok", sid, dev)
        return 200, {"v": _V, "sid": sid.hex(), "ap": ap.hex()}, None

    def config(self, body, station, now):
        sid = _hex(body, "sid", protocol.NONCE_LEN)
        have = _int(body, "have")
        s = self.sessions.get(sid, now)
        if s is None or s["ver"] is not None:  # one config per session
            return self._fail(None, None, station, now)
        sk = s["sk"]
        if not protocol.mac_ok(sk, body.get("m"), "cfgbox/1 config", sid, have):
            return self._fail(None, None, station, now)
        dev = s["dev"]
        ver = s["cur"]  # known since auth: no file read to say "unchanged"
        s["ver"] = ver
        if have == ver:
            m = protocol.mac(sk, "cfgbox/1 unchanged", sid, ver)
            return 200, {"v": _V, "ver": ver, "unchanged": True, "m": m.hex()}, None
        return 200, self._stream(dev, sid, sk, ver), {"Content-Type": "application/octet-stream"}

    def _stream(self, dev, sid, sk, ver):
        """The config answer's body, made as it is sent: ver (4 bytes) then the device's config
        (defaults composed with its overrides) sealed as a stream under the session key. The
        stored streams are verified as they are read; if either fails, the answer stops before
        its last block and tag, so the device stores nothing."""
        yield ver.to_bytes(4, "big")
        out = []
        rev, d_reader, d_sealed, f = self.store.open_defaults()
        o_file = None
        try:
            _, o_reader, o_sealed, o_file = self.store.open_overrides(dev)
            w = SealWriter(SealKey(sk), protocol.tr("cfgbox/1 cfg", sid, dev, ver),
                           lambda b: out.append(bytes(b)))
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
        s = self.sessions.get(sid, now)
        if s is None or s["ver"] is None or s["ver"] != ver:
            return self._fail(None, None, station, now)
        if not protocol.mac_ok(s["sk"], body.get("m"), "cfgbox/1 ack", sid, ver, st):
            return self._fail(None, None, station, now)
        self.sessions.take(sid, now)  # the session ends here
        try:
            status = json.loads(st)
        except ValueError:
            status = {"raw": st}
        dev = s["dev"]
        rec = s["rec"]
        if rec["ack"] != ver or rec["state"] != "provisioned" or (
                isinstance(status, dict) and isinstance(rec["st"], dict)
                and status.get("err") != rec["st"].get("err")):
            # what the operator must see survives a reboot: a new version, a new error
            rec["ack"], rec["st"], rec["seen"], rec["state"] = ver, status, now, "provisioned"
            self._pending.pop(dev, None)
            self.store.save_device(dev, rec)
        else:  # the same state: the status (heap, RSSI) rides on the device's next write
            if len(self._pending) >= _PENDING and dev not in self._pending:
                self._pending.pop(next(iter(self._pending)))
            self._pending[dev] = status
        m = protocol.mac(s["sk"], "cfgbox/1 ack-ok", sid, ver)
        return 200, {"v": _V, "ok": True, "m": m.hex()}, None
