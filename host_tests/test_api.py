# The box's device API as pure functions under CPython: message validation (fuzzed), replays, the
# TOTP window, lockouts, and the bounded nonce table. A small CPython device (hostbox.HostDevice)
# speaks the protocol; the MicroPython end-to-end tests run the real client against the real box.
import json
import os
import statistics
import sys
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared import otp, protocol
from shared.sealedbox import SealError, SealKey

from configurator_fw import api as api_module
from configurator_fw import lockout
from configurator_fw.api import DeviceApi
from hostbox import ACK, AUTH, CONFIG, HELLO, T0, HostDevice, new_api, reopen, snapshot


@pytest.fixture
def api(tmp_path):
    a, boot = new_api(tmp_path, ["sensor-1", "sensor-2"])
    a.boot = boot
    a.root = tmp_path
    return a


def test_full_exchange_then_unchanged(api):
    wifi = [{"ssid": "plant", "password": "secret-wifi"}]
    api.store.set_defaults({"wifi": wifi, "mqtt": {"host": "m", "port": 8883}})
    api.store.set_overrides("sensor-1", {"name": "boiler", "mqtt": {"user": "s1"}})
    d = HostDevice(api, api.boot["sensor-1"])
    ver, cfg = d.exchange(T0)
    assert json.loads(cfg) == {"wifi": wifi, "name": "boiler",
                               "mqtt": {"host": "m", "port": 8883, "user": "s1"}}
    rec = api.store.device("sensor-1")
    assert (rec["ack"], rec["state"]) == (ver, "provisioned")
    assert api.store.status.get(rec["slot"], "sensor-1") == {"fw": "host"}
    assert d.exchange(T0 + 30, have=ver) == (ver, None)  # unchanged: nothing downloaded


HOSTILE = [None, True, False, 0, -1, 1.5, 2**64, "", "zz", "00", "0" * 63, "0" * 65, "x" * 600,
           [], {}, [[[[[1]]]]], "sensor-1", "../x", 4084571.0]


def _valid(api, route, now):
    """A request that is right in every way: a live nonce from a real hello, a live session from
    a real auth, correct MACs; the fuzzer alters it from there, so it reaches the checks behind
    the first ones (the nonce table, the TOTP step and MAC, the session and its MACs)."""
    d = HostDevice(api, api.boot["sensor-2"], station="127.0.4.8")
    d.hello(now)
    if route == AUTH:
        step = otp.counter_at(now)
        k = protocol.long_term_key(d.dk, d.totp)
        sk = protocol.session_key(k, d.cn, d.sn, d.box, d.dev, step, protocol.code(d.totp, step))
        dp = protocol.mac(sk, "cfgbox/2 dev", d.box, d.dev, d.cn, d.sn, step)
        return d, {"v": 2, "dev": d.dev, "cn": d.cn.hex(), "sn": d.sn.hex(), "c": step,
                   "dp": dp.hex()}
    api.ids.ok(d.dev)
    assert d.auth(now)[0] == 200
    if route == CONFIG:
        return d, {"v": 2, "sid": d.sid.hex(), "have": 0,
                   "m": protocol.mac(d.sk, "cfgbox/2 config", d.sid, 0).hex()}
    s, out = d.config(now)
    st = '{"fw":"f"}'
    return d, {"v": 2, "sid": d.sid.hex(), "ver": out["ver"], "st": st,
               "m": protocol.mac(d.sk, "cfgbox/2 ack", d.sid, out["ver"], st).hex()}


def _flip(text, i):
    i %= len(text)
    return text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:]


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 5), st.sampled_from(HOSTILE)),
    st.tuples(st.just("flip"), st.integers(0, 5), st.integers(0, 63)),  # one hex digit off
    st.tuples(st.just("drop"), st.integers(0, 5), st.none()),
    st.tuples(st.just("extra"), st.integers(0, 5), st.sampled_from(HOSTILE)),
    st.tuples(st.just("step"), st.integers(0, 5), st.sampled_from([-2, -1, 1, 2, 10**6])))


def _mutate(body, m):
    kind, i, arg = m
    name = sorted(body)[i % len(body)]
    if kind == "set":
        body[name] = arg
    elif kind == "flip" and isinstance(body[name], str) and body[name]:
        body[name] = _flip(body[name], arg)
    elif kind == "drop":
        del body[name]
    elif kind == "extra":
        body["x"] = arg
    elif kind == "step" and type(body.get("c")) is int:
        body["c"] += arg
    else:
        return False
    return True


def test_fuzzed_requests_reach_the_mac_checks_and_change_nothing(api, monkeypatch):
    """Valid exchanges, each request altered in one or two places: every altered one gets a small
    4xx and leaves the store as it was; most get as far as the MAC check (counted)."""
    reached = {"mac": 0, "all": 0, "altered": 0}
    real = protocol.mac_ok

    def counting(*a):
        reached["mac"] += 1
        return real(*a)

    monkeypatch.setattr(api_module.protocol, "mac_ok", counting)
    clock = [T0]

    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(route=st.sampled_from([AUTH, CONFIG, ACK]), muts=st.lists(mutation, max_size=2))
    def one(route, muts):
        clock[0] += 30  # a fresh TOTP step each time: a valid auth is never a reuse
        now = clock[0]
        for p in api.ids._d, api.stations._d:
            p.clear()  # this test is about what each request does, not lockout
        d, body = _valid(api, route, now)
        altered = False
        for m in muts:
            altered |= _mutate(body, m)
        before = snapshot(api.root)
        status, out, headers = api.handle(route, body, d.station, now)
        reached["all"] += 1
        event("%s %d" % (route, status))
        if not altered:
            assert status == 200, out
            return
        reached["altered"] += 1
        assert status in (200, 400, 401), (body, out)
        if status == 200:  # a change that leaves the request valid (a float that is whole...)
            return
        assert "error" in out and out["v"] == 2 and len(json.dumps(out)) < 120
        assert snapshot(api.root) == before, (body, out)

    one()
    assert reached["altered"] > 100
    # most requests got past the shape checks to a MAC check (in v1's fuzz, none did)
    assert reached["mac"] >= 0.5 * reached["all"], reached


def test_shapeless_requests_get_a_small_400(api):
    for path in (HELLO, AUTH, CONFIG, ACK):
        for body in (None, [], "x", 3, {"v": True}, {"v": 1}, {"v": "2"}, {}):
            s, out, _ = api.handle(path, body, "127.0.4.8", T0)
            assert s == 400 and "error" in out, (path, body, out)
    assert api.handle("/api/v2/nope", {"v": 2}, "s", T0)[0] == 404


def test_bad_fields_are_named_and_unknown_fields_refused(api):
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": "sensor-1", "cn": "00"}, "st", T0)
    assert (s, out["error"]) == (400, "bad field: cn")
    s, out, _ = api.handle(HELLO, {"v": 3}, "st", T0)
    assert (s, out) == (400, {"v": 2, "error": "version", "supported": [2]})
    s, out, _ = api.handle(HELLO, {"v": True, "dev": "sensor-1", "cn": "00" * 16}, "st", T0)
    assert (s, out["error"]) == (400, "version")  # true is not 2 (nor 1)
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": "sensor-1", "cn": "00" * 16, "x": 1}, "st", T0)
    assert (s, out["error"]) == (400, "unknown field")


def test_whole_number_floats_are_numbers(api):
    """JSON has one number type: 4084571.0 is the integer 4084571 (openapi's integer)."""
    d = HostDevice(api, api.boot["sensor-1"])
    d.hello(T0)
    assert d.auth(T0)[0] == 200
    m = protocol.mac(d.sk, "cfgbox/2 config", d.sid, 0)
    s, out, _ = api.handle(CONFIG, {"v": 2, "sid": d.sid.hex(), "have": 0.0, "m": m.hex()},
                           d.station, T0)
    assert s == 200, out
    assert protocol.wire_int(4084571.0) == 4084571
    assert protocol.wire_int(1.5) is None and protocol.wire_int(True) is None
    assert protocol.wire_int(float("nan")) is None and protocol.wire_int(2**40) is None


def _right_mac_variants(tag_hex):
    # what a MITM or a sloppy peer might send instead of the right MAC
    return ["", tag_hex[:2], tag_hex[:32], tag_hex[:-2], tag_hex + "00", tag_hex.upper()[:-1],
            _flip(tag_hex, 5), None, 0, [tag_hex]]


def test_macs_of_wrong_length_and_empty_are_refused_everywhere(api):
    key = bytes(range(32))
    right = protocol.mac(key, "cfgbox/2 box", "b", "d").hex()
    assert protocol.mac_ok(key, right, "cfgbox/2 box", "b", "d")
    for bad in _right_mac_variants(right):
        assert not protocol.mac_ok(key, bad, "cfgbox/2 box", "b", "d"), bad
    # the box: dp, and the m of config and ack, each with the right MAC cut, emptied, extended
    for i, route in enumerate((AUTH, CONFIG, ACK)):
        field = "dp" if route == AUTH else "m"
        now = T0 + 30 * i
        _, body = _valid(api, route, now)
        for bad in _right_mac_variants(body[field]):
            before = snapshot(api.root)
            b = dict(body, **{field: bad})
            s, out, _ = api.handle(route, b, "127.0.4.8", now)
            assert s in (400, 401), (route, bad, out)
            assert snapshot(api.root) == before
            api.ids.ok("sensor-2")
            api.stations.ok("127.0.4.8")


def test_replayed_hello_gets_a_fresh_nonce_and_writes_nothing(api):
    d = HostDevice(api, api.boot["sensor-1"])
    first = d.hello(T0)
    before = snapshot(api.root)
    s, again, _ = api.handle(HELLO, d.sent[HELLO], d.station, T0 + 1)
    assert s == 200 and again["sn"] != first["sn"]
    assert snapshot(api.root) == before
    # the old nonce still serves the device once; the replayed hello's nonce proves nothing
    assert d.auth(T0 + 1)[0] == 200


def test_replayed_auth_config_ack_are_refused(api):
    d = HostDevice(api, api.boot["sensor-1"])
    ver, _ = d.exchange(T0)
    for path in (AUTH, CONFIG, ACK):
        s, out, _ = api.handle(path, d.sent[path], d.station, T0 + 5)
        assert (s, out) == (401, {"v": 2, "error": "unauthorized"}), path


def test_nonce_is_bound_to_station_and_client_nonce(api):
    d = HostDevice(api, api.boot["sensor-1"])
    d.hello(T0)
    d.station = "127.0.4.7"  # a neighbour lifts the nonce and answers from elsewhere
    assert d.auth(T0)[0] == 401
    d.station = "127.0.4.2"
    assert d.auth(T0)[0] == 401  # and the nonce is gone: single use whatever happened


def test_totp_window_is_one_step_each_way_and_each_step_once(api):
    d = HostDevice(api, api.boot["sensor-1"])
    c = T0 // 30
    for step, ok in ((c - 2, False), (c + 2, False), (c - 1, True), (c - 1, False), (c, True),
                     (c, False), (c + 1, True), (c + 1, False)):
        d.hello(T0)
        assert (d.auth(T0, step=step)[0] == 200) == ok, (step - c, ok)
        if ok:
            assert api.store.device("sensor-1")["ctr"] == step
        api.ids.ok("sensor-1")  # keep the failures from locking the device


def test_the_code_binds_its_time_step(api):
    """A device that names one step and proves with another step's code is refused."""
    d = HostDevice(api, api.boot["sensor-1"])
    c = T0 // 30
    d.hello(T0)
    k = protocol.long_term_key(d.dk, d.totp)
    sk = protocol.session_key(k, d.cn, d.sn, d.box, d.dev, c, protocol.code(d.totp, c + 1))
    dp = protocol.mac(sk, "cfgbox/2 dev", d.box, d.dev, d.cn, d.sn, c)
    body = {"v": 2, "dev": d.dev, "cn": d.cn.hex(), "sn": d.sn.hex(), "c": c, "dp": dp.hex()}
    assert api.handle(AUTH, body, d.station, T0)[0] == 401


def _fail_auth(api, dev, station, now, boot=None):
    """One failed auth for ``dev`` on a nonce a hello gave it at ``station``."""
    d = HostDevice(api, boot or {"dev": dev, "dk": bytes(32), "totp": bytes(20)}, station)
    d.cn = bytes(16)
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": dev, "cn": d.cn.hex()}, station, now)
    assert s == 200
    d.sn = bytes.fromhex(out["sn"])
    return d.auth(now, dk=bytes(32))[0]


@pytest.mark.parametrize("dev", ["sensor-1", "nobody-99"])
def test_lockout_is_the_same_for_enrolled_and_unknown_ids(api, dev):
    """Five failures lock an id, enrolled or not, with the same answers and the same back-off;
    each failure is counted whichever station it comes from."""
    got = []
    for i in range(lockout.DEVICE_THRESHOLD + 2):
        got.append(_fail_auth(api, dev, "127.0.4.%d" % (10 + i), T0 + i))
    assert got == [401] * lockout.DEVICE_THRESHOLD + [429, 429]
    d = HostDevice(api, api.boot.get(dev) or {"dev": dev, "dk": bytes(32), "totp": bytes(20)})
    d.cn = bytes(16)
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": dev, "cn": d.cn.hex()}, d.station, T0 + 10)
    d.sn = bytes.fromhex(out["sn"])
    s, out, h = d.auth(T0 + 10)  # the right key and code (for sensor-1), locked: not evaluated
    assert (s, out["error"], 0 < int(h["Retry-After"]) <= lockout.BASE) == (429, "locked", True)
    if dev in api.boot:
        d.hello(T0 + 4 + lockout.BASE)
        assert d.auth(T0 + 4 + lockout.BASE)[0] == 200  # the lock ends, the device gets in


def test_a_made_up_server_nonce_never_locks_a_device_out(api):
    """Failures on a nonce the box never gave this id at this station count against the station,
    not the device: a neighbour cannot lock a device out without even a hello."""
    for i in range(3 * lockout.DEVICE_THRESHOLD):
        body = {"v": 2, "dev": "sensor-1", "cn": "00" * 16, "sn": "%032x" % i, "c": T0 // 30,
                "dp": "00" * 32}
        assert api.handle(AUTH, body, "127.0.4.%d" % (20 + i), T0)[0] == 401
    d = HostDevice(api, api.boot["sensor-1"])
    d.hello(T0)
    assert d.auth(T0)[0] == 200


def test_a_nonce_lifted_to_another_station_does_not_count_against_the_device(api):
    d = HostDevice(api, api.boot["sensor-1"])
    for _ in range(2 * lockout.DEVICE_THRESHOLD):
        d.hello(T0)
        d.station = "127.0.4.99"  # the neighbour answers with the device's nonce
        assert d.auth(T0, dk=bytes(32))[0] == 401
        d.station = "127.0.4.2"
    d.hello(T0)
    assert d.auth(T0)[0] == 200


def test_station_lockout_covers_every_route_and_only_that_station(api):
    for i in range(lockout.STATION_THRESHOLD):
        body = {"v": 2, "dev": "ghost-%d" % i, "cn": "00" * 16, "sn": "11" * 16, "c": 1,
                "dp": "00" * 32}
        assert api.handle(AUTH, body, "127.0.4.66", T0)[0] == 401
    hello = {"v": 2, "dev": "sensor-1", "cn": "00" * 16}
    s, out, h = api.handle(HELLO, hello, "127.0.4.66", T0)
    assert (s, h["Retry-After"]) == (429, str(lockout.BASE))
    assert api.handle(HELLO, hello, "127.0.4.67", T0)[0] == 200
    assert api.handle(HELLO, hello, "127.0.4.66", T0 + lockout.BASE)[0] == 200


def test_one_station_cannot_fill_the_nonce_table(api):
    """16 hellos (or 1,000) from one station keep only its 2 newest nonces; the table never
    refuses a hello, and a device's nonce survives a flood from elsewhere."""
    d = HostDevice(api, api.boot["sensor-1"])
    d.hello(T0)
    flood = {"v": 2, "dev": "sensor-2", "cn": "00" * 16}
    sns = [api.handle(HELLO, flood, "127.0.4.66", T0)[1]["sn"] for _ in range(1000)]
    assert len(api.nonces) == 3
    assert d.auth(T0)[0] == 200
    live = [sn for sn in sns if api.nonces.get(bytes.fromhex(sn), T0)]
    assert live == sns[-2:]
    # many stations: the table keeps its newest 16; every hello is still answered
    for i in range(40):
        assert api.handle(HELLO, flood, "127.0.5.%d" % i, T0)[0] == 200
    assert len(api.nonces) == 16


def test_unset_clock_refuses_hello_and_auth(tmp_path):
    api, boot = new_api(tmp_path, ["sensor-1"], clock_ok=False)
    d = HostDevice(api, boot["sensor-1"])
    s, out, h = api.handle(HELLO, {"v": 2, "dev": "sensor-1", "cn": "00" * 16}, d.station, T0)
    assert (s, out["error"], h["Retry-After"]) == (503, "clock", "60")
    api.clock_ok = True
    d.hello(T0)
    api.clock_ok = False
    s, out, h = d.auth(T0)
    assert (s, out["error"], h["Retry-After"]) == (503, "clock", "60")


def test_revoked_device_is_answered_like_an_unknown_one(api):
    boot = api.boot["sensor-1"]
    api.store.revoke("sensor-1")
    api = DeviceApi(reopen(api.store))  # the operator's change, then the box restarts
    d = HostDevice(api, boot)
    with pytest.raises(AssertionError, match="box not authentic"):
        d.hello(T0)  # the decoy key: the revoked device cannot even check the box
    d.sn = bytes.fromhex(d.post(HELLO, d.sent[HELLO], T0)[1]["sn"])
    assert d.auth(T0)[0] == 401
    assert api.store.device("sensor-1")["state"] == "revoked"
    with pytest.raises(KeyError):
        api.store.totp_secret("sensor-1")  # its second factor is gone from the store
    slot = api.store.device("sensor-1")["slot"]
    assert api.store.secrets.read(slot) == (None, None)  # erased on the flash, not only hidden


def test_sessions_serve_one_config_and_expire(api):
    d = HostDevice(api, api.boot["sensor-1"])
    d.hello(T0)
    assert d.auth(T0)[0] == 200
    assert d.config(T0 + 60)[0] == 401  # the session expired
    d.hello(T0 + 60)
    assert d.auth(T0 + 60)[0] == 200
    s, out = d.config(T0 + 61)
    assert s == 200
    assert d.config(T0 + 62)[0] == 401  # a session serves one config
    assert d.ack(T0 + 62, out["ver"] + 1)[0] == 401  # an ack must name what was served
    assert d.ack(T0 + 62, out["ver"])[0] == 200



# -- what an attacker learns: enrolled ids, and the DK-only attacker of v1's finding

_HEAVY = ("mac.py", "hkdf.py", "sealedbox.py", "cryptolib.py", "board.py", "decoder.py", "ct.py")


def _work(fn):
    """(answer, the calls fn made into crypto, files and JSON, by function, counted)."""
    calls = {}

    def prof(frame, event, arg):
        if event == "call":
            key = (os.path.basename(frame.f_code.co_filename), frame.f_code.co_name)
            if key[0] in _HEAVY:
                calls[key] = calls.get(key, 0) + 1

    sys.setprofile(prof)
    try:
        out = fn()
    finally:
        sys.setprofile(None)
    return out, calls


def _probe(api, dev, now, station="127.0.4.50"):
    """hello then a failing auth for ``dev``, from a cold store cache: (hello work, auth work,
    auth seconds)."""
    api.ids.ok(dev)
    api.stations.ok(station)
    api.store._state = None
    body = {"v": 2, "dev": dev, "cn": "00" * 16}
    (s, out, _), hello = _work(lambda: api.handle(HELLO, body, station, now))
    assert s == 200
    auth_body = dict(body, sn=out["sn"], c=now // 30, dp="00" * 32)
    t = time.perf_counter()
    (s, _, _), auth = _work(lambda: api.handle(AUTH, auth_body, station, now))
    dt = time.perf_counter() - t
    assert s == 401
    return hello, auth, dt


def test_unknown_ids_cost_the_box_what_enrolled_ones_do(tmp_path):
    """Hello and a failed auth do the same crypto, file and JSON work for an enrolled id and an
    unknown one (traced call by call), so their timing cannot tell them apart; the timing
    distributions are measured too and printed (make bench reports them on MicroPython)."""
    api, _ = new_api(tmp_path, ["sensor-%02d" % i for i in range(40)])
    enrolled = ["sensor-%02d" % i for i in range(0, 40, 4)]
    unknown = ["ghost-%02d" % i for i in range(10)]
    times = {"enrolled": [], "unknown": []}
    for a, b in zip(enrolled, unknown, strict=True):
        ha, aa, ta = _probe(api, a, T0)
        hb, ab, tb = _probe(api, b, T0)
        assert ha == hb, (a, b)
        assert aa == ab, (a, b)
        times["enrolled"].append(ta)
        times["unknown"].append(tb)
    for _ in range(10):  # and interleaved many times for the distributions
        for a, b in zip(enrolled, unknown, strict=True):
            times["enrolled"].append(_probe(api, a, T0)[2])
            times["unknown"].append(_probe(api, b, T0)[2])
    for name, xs in times.items():
        q = statistics.quantiles(xs, n=10)
        print("auth failure, %s ids: median %.3f ms, p10 %.3f, p90 %.3f"
              % (name, 1000 * statistics.median(xs), 1000 * q[0], 1000 * q[-1]))


def test_the_device_key_alone_opens_and_proves_nothing(api):
    """The attacker of v1's finding holds DK (and here, as the worst case, even the right TOTP
    code) but not T. From a recorded exchange no key it can make verifies dp, opens the config
    or makes the box's proof; actively, every auth it makes is refused, and the device's step
    counter on the box does not move."""
    boot = api.boot["sensor-1"]
    d = HostDevice(api, boot)
    api.store.set_defaults({"secret": "s3cret"})
    hello = d.hello(T0)
    s, auth, _ = d.auth(T0)
    assert s == 200
    s, cfg = d.config(T0)
    assert s == 200 and b"s3cret" in cfg["records"]
    sealed = cfg["sealed"]
    sent_dp = d.sent[AUTH]["dp"]
    c = T0 // 30
    code = protocol.code(boot["totp"], c)  # the worst case: the attacker knows the code too
    tries = 0
    for k in (boot["dk"], protocol.long_term_key(boot["dk"], b""),
              protocol.long_term_key(boot["dk"], bytes(20))):
        assert not protocol.mac_ok(k, hello["bp"], "cfgbox/2 box", d.box, d.dev, d.cn, d.sn,
                                   hello["t"])
        for step in (c - 1, c, c + 1):
            sk = protocol.session_key(k, d.cn, d.sn, d.box, d.dev, step, code)
            tries += 1
            assert not protocol.mac_ok(sk, sent_dp, "cfgbox/2 dev", d.box, d.dev, d.cn, d.sn, c)
            with pytest.raises(SealError):
                SealKey(sk).open(sealed, protocol.tr("cfgbox/2 cfg", d.sid, d.dev, cfg["ver"]))
    assert tries == 9
    ctr = api.store.device("sensor-1")["ctr"]
    for i in range(3):  # actively, from a fresh hello each time: refused
        a = HostDevice(api, boot, station="127.0.4.%d" % (60 + i))
        a.cn = bytes(16)
        s, out, _ = api.handle(HELLO, {"v": 2, "dev": "sensor-1", "cn": a.cn.hex()}, a.station,
                               T0 + 30)
        a.sn = bytes.fromhex(out["sn"])
        assert a.auth(T0 + 30, totp=bytes(20))[0] == 401  # right DK, wrong T
    assert api.store.device("sensor-1")["ctr"] == ctr


def test_two_devices_keys_differ(api):
    a, b = api.boot["sensor-1"], api.boot["sensor-2"]
    assert a["dk"] != b["dk"] and a["totp"] != b["totp"]
    assert protocol.long_term_key(a["dk"], a["totp"]) != protocol.long_term_key(b["dk"], b["totp"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text("[]{}\"\\ab", max_size=6),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text("[]{}\"\\a", max_size=4),
                                                              kids, max_size=3),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_nesting_is_measured_on_the_raw_text_as_the_parsed_value_would(value):
    """The box refuses deep JSON before parsing it (the parser's stack grows with the depth):
    the raw-text count agrees with the depth of the parsed value, brackets in strings aside."""
    from configurator_fw.app import MAX_DEPTH, too_deep

    def depth(v):  # arrays and objects inside one another
        if isinstance(v, dict):
            v = list(v.values())
        if not isinstance(v, list):
            return 0
        return 1 + max([depth(x) for x in v] or [0])

    raw = json.dumps(value).encode()
    assert too_deep(raw) == (depth(value) > MAX_DEPTH), raw


def test_v_as_a_whole_float_is_2_and_byte_strings_must_be_lowercase_hex(api):
    """s.0: a whole-valued number is the integer ("v": 2.0 is 2); every byte string is
    lowercase hex, so an uppercase nonce or MAC is malformed (400) and changes nothing."""
    s, out, _ = api.handle(HELLO, {"v": 2.0, "dev": "sensor-1", "cn": "0a" * 16}, "s1", T0)
    assert s == 200 and out["v"] == 2, out
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": "sensor-1", "cn": "0A" * 16}, "s1", T0)
    assert (s, out["error"]) == (400, "bad field: cn")
    d, body = _valid(api, AUTH, T0)
    before = snapshot(api.root)
    upper = dict(body, dp=body["dp"].upper())
    assert upper["dp"] != body["dp"]  # it has hex letters to change
    s, out, _ = api.handle(AUTH, upper, d.station, T0)
    assert (s, out["error"]) == (400, "bad field: dp")
    assert snapshot(api.root) == before
    s, out, _ = api.handle(AUTH, dict(body, sn=body["sn"].upper()), d.station, T0)
    assert (s, out["error"]) == (400, "bad field: sn")
    s, out, _ = api.handle(AUTH, body, d.station, T0)  # the same, in lowercase, still opens
    assert s == 200, out


def _auth_with(api, d, now, dev=None, cn=None, step=None):
    """d's auth with d's own secrets, naming another ``dev`` or another client nonce ``cn``
    than its hello and its MAC made right over what it names: only the nonce's binding to the
    hello can refuse it."""
    step = otp.counter_at(now) if step is None else step
    dev = dev or d.dev
    cn = cn or d.cn
    k = protocol.long_term_key(d.dk, d.totp)
    sk = protocol.session_key(k, cn, d.sn, d.box, dev, step, protocol.code(d.totp, step))
    dp = protocol.mac(sk, "cfgbox/2 dev", d.box, dev, cn, d.sn, step)
    return api.handle(AUTH, {"v": 2, "dev": dev, "cn": cn.hex(), "sn": d.sn.hex(), "c": step,
                             "dp": dp.hex()}, d.station, now)


def test_an_auth_naming_another_device_or_client_nonce_than_its_hello_is_refused(api):
    """A nonce is bound to the id and the client nonce of the hello it answered: sensor-1's
    holder naming sensor-2 in its auth (to get sensor-2's config with sensor-1's secrets), or
    another client nonce, with MACs right for what they name, is refused; the proper pair
    still opens."""
    d = HostDevice(api, api.boot["sensor-1"])
    d.hello(T0)
    s, out, _ = _auth_with(api, d, T0, dev="sensor-2")
    assert (s, out) == (401, {"v": 2, "error": "unauthorized"})
    d.hello(T0)
    s, out, _ = _auth_with(api, d, T0, cn=bytes(16))  # another client nonce than the hello's
    assert (s, out) == (401, {"v": 2, "error": "unauthorized"})
    d.hello(T0)
    assert _auth_with(api, d, T0)[0] == 200  # the control: the pair as the hello made it


def test_an_ack_without_a_config_request_in_its_session_is_refused_and_changes_nothing(api):
    d = HostDevice(api, api.boot["sensor-1"])
    d.hello(T0)
    assert d.auth(T0)[0] == 200
    before = snapshot(api.root)
    rec = dict(api.store.device("sensor-1"))
    s, out = d.ack(T0, 1)
    assert s == 401 and out == {"v": 2, "error": "unauthorized"}, out
    assert snapshot(api.root) == before and api.store.device("sensor-1") == rec


def test_a_success_clears_the_devices_and_the_stations_failure_counts(api):
    """Four wrong codes, a success, four more: never locked (without the clearing the fifth
    would lock the device); the same for a station's count, below its own threshold."""
    d = HostDevice(api, api.boot["sensor-1"])
    now = T0
    for _round in range(3):
        for _ in range(lockout.DEVICE_THRESHOLD - 1):
            d.hello(now)
            assert d.auth(now, totp=b"\x01" * 20)[0] == 401
        d.hello(now)
        assert d.auth(now)[0] == 200, "locked: a success did not clear the count"
        now += 30  # the next step: each step is taken once
    assert api.ids.locked("sensor-1", now) == 0 and api.stations.locked(d.station, now) == 0
    assert lockout.STATION_THRESHOLD > lockout.DEVICE_THRESHOLD - 1


def test_the_401_bodies_for_wrong_code_wrong_dk_and_unknown_id_are_byte_identical(api):
    """Whatever failed, the device API says the same bytes (headers included)."""
    d = HostDevice(api, api.boot["sensor-1"])
    answers = []
    for kw in ({"totp": b"\x02" * 20}, {"dk": b"\x03" * 32}):
        d.hello(T0)
        answers.append(d.auth(T0, **kw))
    ghost = HostDevice(api, dict(api.boot["sensor-1"], dev="sensor-77"), station="127.0.4.9")
    ghost.cn = os.urandom(16)  # its hello answered with a decoy (its bp cannot check)
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": "sensor-77", "cn": ghost.cn.hex()},
                           ghost.station, T0)
    assert s == 200
    ghost.sn = bytes.fromhex(out["sn"])
    answers.append(ghost.auth(T0))
    wire = {(s, json.dumps(out, separators=(",", ":")), json.dumps(h)) for s, out, h in answers}
    assert len(wire) == 1 and next(iter(wire))[0] == 401, wire
