# The device API of docs/PROTOCOL.md as pure functions: parsed body, station, time -> answer.
import binascii
import json
import os

from configurator_fw import lockout
from configurator_fw.nonces import Table
from configurator_fw.store import valid_id
from shared import otp, protocol
from shared.sealedbox import SealKey

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


class DeviceApi:
    def __init__(self, store, clock_ok=True):
        self.store = store
        self.clock_ok = clock_ok  # False until a trusted source set the clock (PROTOCOL.md s.4)
        self.nonces = Table(16, 60)
        self.sessions = Table(10, 60)
        self.stations = lockout.Stations()

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
        self.store.refresh()
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
        if not self.nonces.add(sn, (dev, cn, station), now):
            return 503, {"v": _V, "error": "busy"}, {
                "Retry-After": str(self.nonces.retry_after(now))}
        mk = self.store.master_key()
        rec = self.store.device(dev)
        known = rec is not None and rec["state"] != "revoked"
        key = protocol.device_key(mk, dev) if known else protocol.decoy_key(mk, dev)
        box = self.store.meta["box"]
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
        if issued != (dev, cn, station) or rec is None or rec["state"] == "revoked":
            return self._fail(dev, rec, station, now)
        dk = protocol.device_key(self.store.master_key(), dev)
        secret = self.store.totp_secret(dev, rec)
        box = self.store.meta["box"]
        found = None
        base = otp.counter_at(now)
        for c in range(base - 1, base + 2):
            if c <= rec["ctr"]:
                continue
            sk = protocol.session_key(dk, cn, sn, box, dev, otp.hotp(secret, c))
            if protocol.mac_ok(sk, dp, "cfgbox/1 dev", box, dev, cn, sn) and found is None:
                found = (c, sk)
        if found is None:
            return self._fail(dev, rec, station, now)
        rec["ctr"], rec["fails"], rec["lock"], rec["seen"] = found[0], 0, 0, now
        self.store.save_device(dev, rec)  # persisted before the answer leaves
        self.store.raise_floor(now)
        self.stations.ok(station)
        sid = os.urandom(protocol.NONCE_LEN)
        if not self.sessions.add(sid, {"dev": dev, "sk": found[1], "ver": None}, now):
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
        ver = self.store.version(dev)  # two file headers: no decryption to say "unchanged"
        if have == ver:
            s["ver"] = ver
            m = protocol.mac(sk, "cfgbox/1 unchanged", sid, ver)
            return 200, {"v": _V, "ver": ver, "unchanged": True, "m": m.hex()}, None
        ver, cfg = self.store.config(dev)
        s["ver"] = ver
        box = SealKey(sk).seal(cfg, protocol.tr("cfgbox/1 cfg", sid, dev, ver))
        del cfg
        b64 = binascii.b2a_base64(box, newline=False)
        del box
        return 200, {"v": _V, "ver": ver, "cfg": b64.decode()}, None

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
        rec = self.store.device(dev)
        rec["ack"], rec["st"], rec["seen"], rec["state"] = ver, status, now, "provisioned"
        self.store.save_device(dev, rec)
        m = protocol.mac(s["sk"], "cfgbox/1 ack-ok", sid, ver)
        return 200, {"v": _V, "ok": True, "m": m.hex()}, None
