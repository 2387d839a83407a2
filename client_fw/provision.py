# The client's provisioning exchange (docs/PROTOCOL.md s.7): join the box's AP, verify the box,
# prove both factors, fetch and store the config, acknowledge, leave the AP.
import gc
import json
import os

from client_fw import FW_VERSION, bootstrap, wlan
from client_fw.http import Unanswered, post
from client_fw.storage import Storage
from shared import otp, protocol
from shared.sealedbox import SealKey, SealReader

NS = bootstrap.NS
RETRY_MS = (300, 1000, 2500, None)  # a request dropped unread is sent again after these (ms)


def _sleep_ms(ms):
    import time

    (getattr(time, "sleep_ms", None) or (lambda m: time.sleep(m / 1000)))(ms)

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
NOT_BOOTSTRAPPED = bootstrap.NOT_BOOTSTRAPPED
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


_JOIN_STATUS = {wlan.NO_AP: NO_BOX, wlan.WRONG_PASSWORD: WRONG_PSK, wlan.TIMEOUT: AP_FULL}


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
        resent = False
        for wait in RETRY_MS:
            try:
                r = post(host, port, path, obj, src)
                break
            except Unanswered:
                # dropped unread (ten stations at once and the box's 10 sockets): the same
                # request again, a moment later; the box answers every request it reads
                if wait is None:
                    raise Failure(NET) from None
                _sleep_ms(wait + os.urandom(1)[0] * 2)
                resent = True
            except (OSError, ValueError):
                raise Failure(NET) from None
        keep = False
        try:
            if stream and r.status == 200 and not r.json_body:
                keep = True
                return r  # the caller reads it, then closes it
            if resent and r.status == 401:
                # the first one may have been read and its answer lost (its nonce or session
                # is spent): what was lost is the network's, not a refusal of the device
                raise Failure(NET)
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
        boot = bootstrap.read(board)
    except bootstrap.Missing:
        return NOT_BOOTSTRAPPED, None
    storage = Storage(board, boot["dev"], boot["k"])
    sta = wlan.station(board)
    try:
        _phase("joining")
        try:
            ip, _, gw, _ = wlan.join(sta, boot["ssid"], boot["psk"])
        except wlan.JoinError as e:
            raise Failure(_JOIN_STATUS[e.reason]) from None
        host = boot.get("host") or gw

        def status_fn(ver):
            try:
                rssi = sta.status("rssi")
            except (OSError, ValueError):
                rssi = None
            return {"fw": FW_VERSION, "heap": gc.mem_free(), "rssi": rssi, "ver": ver,
                    "err": last_error}

        def used_step(step):
            bootstrap.record(board, boot, ctr=step)

        result, ver = exchange(boot, storage, have, host, ip, now, status_fn, used_step)
        if ver > boot["vmax"]:
            bootstrap.record(board, boot, vmax=ver)
        return result, None
    except Failure as f:
        return f.status, f.retry
    except Exception as e:  # noqa: BLE001 - a hostile box or radio must never crash the boot
        return "%s (%s)" % (ERROR, type(e).__name__), None
    finally:
        wlan.leave(sta)

