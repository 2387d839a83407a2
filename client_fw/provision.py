# The client's provisioning exchange (docs/PROTOCOL.md s.7): join the box's AP, verify the box,
# prove both factors, fetch and store the config, acknowledge, leave the AP.
import gc
import json
import os
import time

from client_fw.http import post
from client_fw.storage import Storage
from shared import otp, protocol
from shared.sealedbox import SealKey, SealReader

FW_VERSION = "1.0.0"
NS = "cfgbox"

# Statuses: what happened, in words the operator's log can show.
OK = "ok"  # a new config was stored
UNCHANGED = "unchanged"  # the stored config is current
NO_BOX = "box not found"
AP_FULL = "AP full"
WRONG_PSK = "wrong AP passphrase"
NOT_AUTHENTIC = "box not authentic"
UNAUTHORIZED = "unauthorized"
LOCKED = "locked out"
TAMPERED = "tampered payload"
NO_CONFIG = "no config yet"
NET = "network error"
BUSY = "box busy"
NOT_BOOTSTRAPPED = "no bootstrap secrets in NVS"


class Failure(Exception):
    def __init__(self, status, retry=None):
        super().__init__(status)
        self.status = status
        self.retry = retry


def read_bootstrap(board):
    """The device's bootstrap secrets from NVS namespace 'cfgbox' (see PROTOCOL.md s.1)."""
    nvs = board.nvs(NS)
    buf = bytearray(80)
    out = {}
    for key in ("dev", "dk", "totp", "ssid", "psk", "box", "host"):
        try:
            out[key] = bytes(buf[: nvs.get_blob(key, buf)])
        except OSError:
            if key != "host":
                raise Failure(NOT_BOOTSTRAPPED) from None
    try:
        out["port"] = nvs.get_i32("port")
    except OSError:
        out["port"] = 80
    try:
        out["ctr"] = nvs.get_i32("ctr")  # the last TOTP step the box accepted from us
    except OSError:
        out["ctr"] = -1
    for key in ("dev", "ssid", "psk", "box", "host"):
        if key in out:
            out[key] = out[key].decode()
    return out


def write_bootstrap(board, boot):
    """Store bootstrap secrets (a dict as the box's enroll prints) in NVS, at commissioning."""
    nvs = board.nvs(NS)
    for key in ("dev", "ssid", "psk", "box", "host"):
        if key in boot:
            nvs.set_blob(key, boot[key].encode())
    for key in ("dk", "totp"):
        nvs.set_blob(key, bytes.fromhex(boot[key]))
    if "port" in boot:
        nvs.set_i32("port", boot["port"])
    nvs.commit()


_NO_AP = (201, 210, 211, 212)  # no AP found (at all, or within the RSSI/authmode thresholds)
_WRONG_PASSWORD = 202  # the port's reading of an auth failure (also reason 205)


def _join(sta, ssid, psk, timeout_ms=10000, settle_ms=4000):
    """Join the box's AP; returns ifconfig(). The port's status() keeps the last failure's reason
    until an IP is got (connect() does not clear it), so a reason that was already there before
    this connect() is believed only once it has stood for ``settle_ms``. A full AP refuses the
    station with a reason the port reads as 1001 (still connecting), like a slow join: an AP seen
    in the scan that never takes us within ``timeout_ms`` is reported as full."""
    sta.active(True)
    if not any(n[0] == ssid.encode() for n in sta.scan()):
        raise Failure(NO_BOX)
    stale = sta.status()
    sta.connect(ssid, psk)
    t0 = time.ticks_ms()
    while not sta.isconnected():
        st = sta.status()
        waited = time.ticks_diff(time.ticks_ms(), t0)
        if (st in _NO_AP or st == _WRONG_PASSWORD) and (st != stale or waited >= settle_ms):
            raise Failure(WRONG_PSK if st == _WRONG_PASSWORD else NO_BOX)
        if waited > timeout_ms:
            raise Failure(AP_FULL)
        time.sleep_ms(100)
    return sta.ifconfig()


def _check(r):
    """The JSON body of a 200 answer; else the Failure its status means."""
    if r.status == 200:
        return r.json()
    if r.status == 429:
        raise Failure(LOCKED, r.retry)
    if r.status == 503:
        raise Failure(BUSY, r.retry)
    raise Failure(UNAUTHORIZED if r.status == 401 else NET)


def exchange(boot, storage, have, host, src, now, status_fn, used_step):
    """hello, auth, config, ack; returns (status, version). Raises Failure."""
    dev, box, dk = boot["dev"], boot["box"], boot["dk"]
    port = boot["port"]
    v = protocol.VERSION

    def call(path, obj, stream=False):
        try:
            r = post(host, port, path, obj, src)
        except (OSError, ValueError):
            raise Failure(NET) from None
        try:
            if stream and r.status == 200 and not r.json_body:
                return r  # the caller reads it, then closes it
            return _check(r)
        except (OSError, ValueError):
            raise Failure(NET) from None
        finally:
            if not (stream and r.status == 200 and not r.json_body):
                r.close()

    cn = os.urandom(protocol.NONCE_LEN)
    h = call(protocol.HELLO, {"v": v, "dev": dev, "cn": cn.hex()})
    try:
        sn = bytes.fromhex(h["sn"])
        t = int(h["t"])
        ok = h["box"] == box and protocol.mac_ok(dk, h["bp"], "cfgbox/1 box", box, dev, cn, sn, t)
    except (KeyError, ValueError, TypeError):
        ok = False
    if not ok:
        raise Failure(NOT_AUTHENTIC)  # an evil twin: nothing secret-dependent was sent
    # each TOTP step is accepted once: after a recent exchange use the next step (still inside
    # the box's one-step window) or wait for it, rather than spend a failure
    step = otp.counter_at(now if now is not None else t)
    last = boot.get("ctr", -1)
    if last >= step + 1:
        raise Failure(BUSY, (last - step) * otp.STEP)
    step = max(step, last + 1)
    sk = protocol.session_key(dk, cn, sn, box, dev, otp.hotp(boot["totp"], step))
    # counted as used before it is sent: the box may accept it and its answer be lost, and the
    # box never takes a step twice (a retry with it would be refused as a failure); a refusal
    # that does arrive gives it back
    used_step(step)
    try:
        a = call(protocol.AUTH, {"v": v, "dev": dev, "cn": cn.hex(), "sn": sn.hex(),
                                 "dp": protocol.mac(sk, "cfgbox/1 dev", box, dev, cn, sn).hex()})
    except Failure as f:
        if f.status != NET:
            used_step(last)
        raise
    try:
        sid = bytes.fromhex(a.get("sid", ""))
    except (ValueError, TypeError, AttributeError):
        sid = b""
    if not protocol.mac_ok(sk, a.get("ap"), "cfgbox/1 auth-ok", sid, dev):
        raise Failure(NOT_AUTHENTIC)
    c = call(protocol.CONFIG, {"v": v, "sid": sid.hex(), "have": have,
                               "m": protocol.mac(sk, "cfgbox/1 config", sid, have).hex()}, True)
    if isinstance(c, dict):
        ver = c.get("ver")
        if not (c.get("unchanged") and isinstance(ver, int) and ver == have
                and protocol.mac_ok(sk, c.get("m"), "cfgbox/1 unchanged", sid, ver)):
            raise Failure(TAMPERED)
        result = UNCHANGED
    else:
        ver = _receive(c, storage, sk, sid, dev)
        result = OK
    st = json.dumps(status_fn(ver))
    k = call(protocol.ACK, {"v": v, "sid": sid.hex(), "ver": ver, "st": st,
                            "m": protocol.mac(sk, "cfgbox/1 ack", sid, ver, st).hex()})
    if not protocol.mac_ok(sk, k.get("m"), "cfgbox/1 ack-ok", sid, ver):
        raise Failure(NOT_AUTHENTIC)
    return result, ver


def _receive(r, storage, sk, sid, dev):
    """Store the config streamed in answer ``r``: ver (4 B), then sealed under SK. Returns ver."""
    try:
        head = bytearray(4)
        if r.readinto(head) != 4:
            raise ValueError("short")
        ver = int.from_bytes(head, "big")
        sealed = SealReader(SealKey(sk), protocol.tr("cfgbox/1 cfg", sid, dev, ver), r.readinto)
        storage.save_stream(ver, sealed)
        return ver
    except OSError:  # the connection broke or timed out: nothing was stored
        raise Failure(NET) from None
    except ValueError:  # SealError: altered, truncated or not for this session
        raise Failure(TAMPERED) from None
    finally:
        r.close()


def provision(board, have, now=None, last_error=None):
    """One provisioning attempt: (status, retry_after or None). Always leaves the AP.

    ``have`` is the version of the config stored now (0 for none or one that does not open).
    """
    try:
        boot = read_bootstrap(board)
    except Failure as f:
        return f.status, None
    storage = Storage(board, boot["dev"], boot["dk"])
    sta = board.wlan("sta")
    try:
        ip, _, gw, _ = _join(sta, boot["ssid"], boot["psk"])
        host = boot.get("host") or gw

        def status_fn(ver):
            try:
                rssi = sta.status("rssi")
            except (OSError, ValueError):
                rssi = None
            return {"fw": FW_VERSION, "heap": gc.mem_free(), "rssi": rssi, "ver": ver,
                    "err": last_error}

        def used_step(step):
            nvs = board.nvs(NS)
            nvs.set_i32("ctr", step)
            nvs.commit()

        result, _ = exchange(boot, storage, have, host, ip, now, status_fn, used_step)
        return result, None
    except Failure as f:
        return f.status, f.retry
    finally:
        sta.disconnect()  # frees the AP slot at once
        sta.active(False)

