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
ROLLBACK = "older config refused"  # the box offered a version below the one stored
ERROR = "unexpected answer"  # anything else that went wrong: never an exception to the caller
# Set to a function of one text to follow an attempt: "joining", "authenticating", "stored",
# "acknowledged" (an LED pattern on a board; the demo's progress lines).
progress = None


def _phase(name):
    if progress:
        progress(name)


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
    try:
        out["vmax"] = nvs.get_i32("vmax")  # the highest config version ever stored
    except OSError:
        out["vmax"] = 0
    for key in ("dev", "ssid", "psk", "box", "host"):
        if key in out:
            out[key] = out[key].decode()
    out["k"] = protocol.long_term_key(out["dk"], out["totp"])
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
    """The JSON object of a 200 answer; else the Failure its status means."""
    if r.status == 200:
        out = r.json()
        if not isinstance(out, dict):
            raise ValueError("not an object")
        return out
    if r.status == 429:
        raise Failure(LOCKED, r.retry)
    if r.status == 503:
        raise Failure(BUSY, r.retry)
    raise Failure(UNAUTHORIZED if r.status == 401 else NET)


def _hex(obj, name, n):
    v = obj.get(name)
    if not isinstance(v, str) or len(v) != 2 * n:
        raise ValueError(name)
    return bytes.fromhex(v)


def _step(t, last):
    """The TOTP step to use at time ``t``, given ``last``, the last step the box may have taken
    from us: the box takes each step once, within one step of its clock. A step just used (an
    answer lost) means a short wait; a recorded step far ahead of the box's time is not ours
    to trust (the box decides), so it never blocks the device for longer."""
    step = otp.counter_at(t)
    if last < step:
        return step
    if last == step:
        return step + 1
    if last <= step + 2:
        raise Failure(BUSY, (last - step) * otp.STEP)
    return step


def exchange(boot, storage, have, host, src, now, status_fn, used_step):
    """hello, auth, config, ack; returns (status, version). Raises Failure."""
    dev, box, k = boot["dev"], boot["box"], boot["k"]
    port = boot["port"]
    v = protocol.VERSION

    def call(path, obj, stream=False):
        try:
            r = post(host, port, path, obj, src)
        except (OSError, ValueError):
            raise Failure(NET) from None
        keep = False
        try:
            if stream and r.status == 200 and not r.json_body:
                keep = True
                return r  # the caller reads it, then closes it
            return _check(r)
        except (OSError, ValueError):
            raise Failure(NET) from None
        finally:
            if not keep:
                r.close()

    _phase("authenticating")
    cn = os.urandom(protocol.NONCE_LEN)
    h = call(protocol.HELLO, {"v": v, "dev": dev, "cn": cn.hex()})
    try:
        sn = _hex(h, "sn", protocol.NONCE_LEN)
        t = protocol.wire_int(h.get("t"), protocol.T_MIN, protocol.T_MAX)
        ok = t is not None and h.get("box") == box and protocol.mac_ok(
            k, h.get("bp"), "cfgbox/2 box", box, dev, cn, sn, t)
    except ValueError:
        ok = False
    if not ok:
        raise Failure(NOT_AUTHENTIC)  # an evil twin: nothing secret-dependent was sent
    # the box's time is believed only as bp vouches for it (a holder of K), and only within
    # T_MIN..T_MAX; a device with a clock of its own (NTP) uses that instead
    last = boot.get("ctr", -1)
    step = _step(now if now is not None else t, last)
    sk = protocol.session_key(k, cn, sn, box, dev, step, protocol.code(boot["totp"], step))
    # counted as used before it is sent: the box may accept it and its answer be lost, and the
    # box never takes a step twice (a retry with it would be refused as a failure); a refusal
    # that does arrive gives it back
    used_step(step)
    try:
        a = call(protocol.AUTH, {"v": v, "dev": dev, "cn": cn.hex(), "sn": sn.hex(), "c": step,
                                 "dp": protocol.mac(sk, "cfgbox/2 dev", box, dev, cn, sn,
                                                    step).hex()})
    except Failure as f:
        if f.status != NET:
            used_step(last)
        raise
    try:
        sid = _hex(a, "sid", protocol.NONCE_LEN)
    except ValueError:
        sid = b""
    if not (sid and protocol.mac_ok(sk, a.get("ap"), "cfgbox/2 auth-ok", sid, dev, step)):
        raise Failure(NOT_AUTHENTIC)
    c = call(protocol.CONFIG, {"v": v, "sid": sid.hex(), "have": have,
                               "m": protocol.mac(sk, "cfgbox/2 config", sid, have).hex()}, True)
    if isinstance(c, dict):
        ver = c.get("ver")
        if not (c.get("unchanged") is True and type(ver) is int and ver == have
                and protocol.mac_ok(sk, c.get("m"), "cfgbox/2 unchanged", sid, ver)):
            raise Failure(TAMPERED)
        result = UNCHANGED
    else:
        ver = _receive(c, storage, sk, sid, dev, max(have, boot.get("vmax", 0)))
        result = OK
        _phase("stored")
    st = json.dumps(status_fn(ver))
    a = call(protocol.ACK, {"v": v, "sid": sid.hex(), "ver": ver, "st": st,
                            "m": protocol.mac(sk, "cfgbox/2 ack", sid, ver, st).hex()})
    if not protocol.mac_ok(sk, a.get("m"), "cfgbox/2 ack-ok", sid, ver):
        raise Failure(NOT_AUTHENTIC)
    _phase("acknowledged")
    return result, ver


def _receive(r, storage, sk, sid, dev, floor):
    """Store the config streamed in answer ``r``: ver (4 B), then sealed under SK. Returns ver.
    A version below ``floor`` (the highest ever stored) is refused before anything is read:
    the device never goes back to an older config."""
    try:
        head = bytearray(4)
        if r.readinto(head) != 4:
            raise ValueError("short")
        ver = int.from_bytes(head, "big")
        if ver < floor or ver == 0:
            raise Failure(ROLLBACK)
        sealed = SealReader(SealKey(sk), protocol.tr("cfgbox/2 cfg", sid, dev, ver), r.readinto)
        storage.save_stream(ver, sealed)
        return ver
    except MemoryError:
        raise Failure(ERROR) from None
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
    storage = Storage(board, boot["dev"], boot["k"])
    sta = board.wlan("sta")
    try:
        _phase("joining")
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

        result, ver = exchange(boot, storage, have, host, ip, now, status_fn, used_step)
        if ver > boot["vmax"]:
            nvs = board.nvs(NS)
            nvs.set_i32("vmax", ver)
            nvs.commit()
        return result, None
    except Failure as f:
        return f.status, f.retry
    except Exception as e:  # noqa: BLE001 - a hostile box or radio must never crash the boot
        return "%s (%s)" % (ERROR, type(e).__name__), None
    finally:
        try:
            sta.disconnect()  # frees the AP slot at once
            sta.active(False)
        except OSError:
            pass

