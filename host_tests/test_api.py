# The box's device API as pure functions under CPython: message validation (fuzzed), replays, the
# TOTP window, lockouts, and the bounded nonce table. A small CPython device (hostbox.HostDevice)
# speaks the protocol; the MicroPython end-to-end tests run the real client against the real box.
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from configurator_fw import lockout
from configurator_fw.api import DeviceApi
from configurator_fw.store import _bucket
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
    assert (rec["ack"], rec["state"], rec["st"]) == (ver, "provisioned", {"fw": "host"})
    assert d.exchange(T0 + 30, have=ver) == (ver, None)  # unchanged: nothing downloaded


fields = {
    "v": st.sampled_from([1, 1, 1, 1, 2, "1", None, True]),
    "dev": st.sampled_from(["sensor-1", "nobody", "", "../x", 7, None]) | st.text(max_size=40),
    "cn": st.sampled_from(["00" * 16, "zz" * 16, "00", 5])
    | st.text("0123456789abcdef", min_size=32, max_size=32),
    "sn": st.sampled_from(["11" * 16, "11" * 16, "", None]),
    "dp": st.sampled_from(["00" * 32, "00" * 32, "not hex", 3, None]),
    "sid": st.sampled_from(["22" * 16, "22" * 16, "xyz", [1]]),
    "have": st.sampled_from([0, 0, 1, -1, 2**31, 1.5, True, "1"]),
    "ver": st.sampled_from([1, 1, -3, 2**40, None]),
    "m": st.sampled_from(["33" * 32, "33" * 32, "", {}]),
    "st": st.sampled_from(["{}", "{}", "x" * 600, 4, None]),
}
def _shaped(*names):
    return st.fixed_dictionaries({k: fields[k] for k in names})


versioned = {k: v for k, v in fields.items() if k != "v"}
anything = st.fixed_dictionaries({"v": st.just(1)}, optional=versioned) | \
    st.fixed_dictionaries({}, optional=fields) | st.lists(st.integers(), max_size=2) | \
    st.none() | st.text(max_size=5)
paths = st.sampled_from([HELLO, AUTH, CONFIG, ACK, "/api/v1/nope", "/api/v2/hello"])
# requests shaped like each route's (so they get past the first checks) and shapeless ones
requests = st.one_of(
    st.tuples(st.just(HELLO), _shaped("v", "dev", "cn")),
    st.tuples(st.just(AUTH), _shaped("v", "dev", "cn", "sn", "dp")),
    st.tuples(st.just(CONFIG), _shaped("v", "sid", "have", "m")),
    st.tuples(st.just(ACK), _shaped("v", "sid", "ver", "st", "m")),
    st.tuples(paths, anything))


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests, dt=st.integers(0, 120),
       station=st.sampled_from(["127.0.4.8", "127.0.4.9"]))
def test_hostile_messages_get_a_small_error_and_change_nothing(api, request, dt, station):
    # one box for all examples, on purpose: its tables and lockouts fill up as a real one's would
    path, body = request
    before = snapshot(api.root)
    status, out, headers = api.handle(path, body, station, T0 + dt)
    event("%s %d" % (path, status))
    assert status in (200, 400, 401, 404, 429, 503)
    assert out["v"] == 1 and len(json.dumps(out)) < 300
    if status == 200:
        assert path == HELLO and set(out) == {"v", "box", "sn", "t", "bp"}
    else:
        assert "error" in out
    if status == 429:
        assert int(headers["Retry-After"]) > 0
    changed = {k for k in set(before) | set(snapshot(api.root))
               if before.get(k) != snapshot(api.root).get(k)}
    # only an authentication failure of an enrolled device is written down (its failure count)
    # (the state bucket sensor-1 shares with other devices)
    assert changed <= ({"store/d/" + _bucket("sensor-1")} if status == 401 else set()), (
        status, changed)


def test_bad_fields_are_named(api):
    s, out, _ = api.handle(HELLO, {"v": 1, "dev": "sensor-1", "cn": "00"}, "st", T0)
    assert (s, out["error"]) == (400, "bad field: cn")
    s, out, _ = api.handle(HELLO, {"v": 3}, "st", T0)
    assert (s, out) == (400, {"v": 1, "error": "version", "supported": [1]})


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
        assert (s, out) == (401, {"v": 1, "error": "unauthorized"}), path


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
        else:
            rec = api.store.device("sensor-1")  # keep the failures from locking the device
            rec["fails"] = rec["lock"] = 0
            api.store.save_device("sensor-1", rec)


def test_device_lockout_grows_persists_and_recovers(api):
    d = HostDevice(api, api.boot["sensor-1"])
    wrong = bytes(32)
    for i in range(lockout.DEVICE_THRESHOLD):
        d.station = "127.0.4.%d" % (10 + i)  # from many stations: the device lock still counts
        d.hello(T0)
        assert d.auth(T0, dk=wrong)[0] == 401
    d.hello(T0 + 1)
    s, out, h = d.auth(T0 + 1)  # the right key and code, but locked: nothing evaluated
    assert (s, out["error"], h["Retry-After"]) == (429, "locked", "29")
    api.store = reopen(api.store)  # a reboot does not clear it
    d.hello(T0 + 29)
    assert d.auth(T0 + 29)[0] == 429
    d.hello(T0 + 30)
    assert d.auth(T0 + 30)[0] == 200
    assert api.store.device("sensor-1")["fails"] == 0


def test_station_lockout_covers_every_route_and_only_that_station(api):
    for i in range(lockout.STATION_THRESHOLD):
        body = {"v": 1, "dev": "ghost-%d" % i, "cn": "00" * 16, "sn": "11" * 16, "dp": "00" * 32}
        assert api.handle(AUTH, body, "127.0.4.66", T0)[0] == 401
    hello = {"v": 1, "dev": "sensor-1", "cn": "00" * 16}
    s, out, h = api.handle(HELLO, hello, "127.0.4.66", T0)
    assert (s, h["Retry-After"]) == (429, str(lockout.BASE))
    assert api.handle(HELLO, hello, "127.0.4.67", T0)[0] == 200
    assert api.handle(HELLO, hello, "127.0.4.66", T0 + lockout.BASE)[0] == 200


def test_full_nonce_table_answers_503_then_recovers(api):
    hello = {"v": 1, "dev": "sensor-2", "cn": "00" * 16}
    for _ in range(16):
        assert api.handle(HELLO, hello, "s", T0)[0] == 200
    s, out, h = api.handle(HELLO, hello, "s", T0 + 10)
    assert (s, out["error"], h["Retry-After"]) == (503, "busy", "50")
    assert api.handle(HELLO, hello, "s", T0 + 60)[0] == 200


def test_unset_clock_refuses_auth_not_hello(tmp_path):
    api, boot = new_api(tmp_path, ["sensor-1"], clock_ok=False)
    d = HostDevice(api, boot["sensor-1"])
    d.hello(T0)
    s, out, h = d.auth(T0)
    assert (s, out["error"], h["Retry-After"]) == (503, "clock", "60")


def test_revoked_device_is_answered_like_an_unknown_one(api):
    rec = api.store.device("sensor-1")
    rec["state"] = "revoked"
    api.store.save_device("sensor-1", rec)
    boot = api.boot["sensor-1"]
    api = DeviceApi(reopen(api.store))  # the operator's change, then the box restarts
    d = HostDevice(api, boot)
    with pytest.raises(AssertionError, match="box not authentic"):
        d.hello(T0)  # the decoy key: the revoked device cannot even check the box
    d.sn = bytes.fromhex(d.post(HELLO, d.sent[HELLO], T0)[1]["sn"])
    assert d.auth(T0)[0] == 401


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

