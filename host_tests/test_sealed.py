# The sealed box (docs/SEALING.md) and its admin API, against the real box under the 32-bit
# MicroPython harness: sealed at power-on, unlock (and the clock) from the admin API, sessions,
# CSRF, lockout, passphrase change, and no secret in clear on the flash or in NVS.
import base64
import json

import pytest
import upy_harness as upy
from adminhttp import AdminClient
from fleet import PASSPHRASE, PSK, Fleet, sealed_fleet

from shared import base32

pytestmark = pytest.mark.skipif(not upy.MICROPYTHON.exists(),
                                reason="MicroPython not built: run `make test`")

CFG = {"wifi": [{"ssid": "plant-floor", "password": "wifi secret 2431"}],
       "mqtt": {"host": "mqtt.local", "user": "fleet", "password": "mqtt secret 9913"},
       "api_keys": {"grafana": "glsa_5ecret_api_key_77"}}


@pytest.fixture
def sealed(tmp_path):
    """A box set up without auto-unseal, one device enrolled, the box powered on (sealed)."""
    f = sealed_fleet(tmp_path, CFG)
    yield f
    f.stop_box()


def _device_api(f):
    s, out, _ = AdminClient(f.port).request(
        "POST", "/api/v2/hello", {"v": 2, "dev": "sensor-1", "cn": "00" * 16})
    return s, out


def test_a_sealed_box_refuses_devices_until_unlocked_and_the_unlock_sets_its_clock(sealed):
    f = sealed
    assert _device_api(f) == (503, {"v": 2, "error": "sealed"})
    status, cfg = f.check("sensor-1")
    # the AP runs with the sealed AP's key: no device joins it
    assert (status, cfg) == ("box not found", None)  # its SSID is SSID-locked
    adm = AdminClient(f.port)
    s, out, _ = adm.get("session")
    assert s == 200 and out["sealed"] is True and out["logged_in"] is False
    assert "csrf" not in out
    assert adm.login("not the passphrase at all", f.world.now())[0] == 401
    assert _device_api(f)[1]["error"] == "sealed"
    browser_time = f.world.now()
    s, out, r = adm.login(PASSPHRASE, browser_time)
    assert s == 200, out
    cookie = r.getheader("Set-Cookie")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=28800"):
        assert attr in cookie
    assert adm.get("session")[1]["clock_ok"] is True  # set from the "browser" at unlock
    assert f.check("sensor-1") == ("ok", CFG)
    # the browser's time, said once ("cfgbox: clock clock set to" before)
    assert "cfgbox: clock set to %d (UTC)" % browser_time in f.box_log_text()
    events = [e["event"] for e in adm.get("audit")[1]["entries"]]
    assert events[:1] == ["provisioned"] and "unlocked" in events and "clock-set" in events


def test_a_browser_clock_years_ahead_is_set_only_when_the_operator_confirms_it(sealed):
    """A computer whose clock runs over 400 days past the box's last known time gets a
    question (409, the box still sealed), not a silently raised floor; confirmed, it is set.
    Closer times, and the clock button's, follow the same rule."""
    f = sealed
    adm = AdminClient(f.port)
    t0 = f.world.now()
    assert adm.login(PASSPHRASE, t0)[0] == 200  # a new fleet's first unlock: nothing to ask
    assert f.check("sensor-1")[0] == "ok"
    f.stop_box()
    f.start_box(cold=True)  # a power cut: sealed again, the clock untrusted
    adm = AdminClient(f.port)
    far = t0 + 401 * 86400
    s, out, _ = adm.login(PASSPHRASE, far)
    assert s == 409 and "401 days after the last time the box knew" in out["error"], out
    assert adm.cookie is None and adm.get("session")[1]["sealed"] is True
    assert _device_api(f) == (503, {"v": 2, "error": "sealed"})
    assert "clock set to %d" % far not in f.box_log_text()
    s, out, _ = adm.login(PASSPHRASE, far, confirm_time=True)
    assert s == 200, out
    assert "clock set to %d (UTC)" % far in f.box_log_text()
    # logged in, the clock button: over 400 days on asks, within them does not
    s, out, _ = adm.post("clock", {"time": far + 500 * 86400})
    assert s == 409 and "500 days after" in out["error"], out
    assert adm.get("session")[1]["now"] < far + 400 * 86400  # not set
    t1 = far + 500 * 86400
    s, out, _ = adm.post("clock", {"time": t1, "confirm_time": True})
    assert s == 200 and out["now"] >= t1, out
    assert adm.post("clock", {"time": t1 + 400 * 86400 + 1})[0] == 409  # one second over
    s, out, _ = adm.post("clock", {"time": t1 + 400 * 86400})  # exactly 400 days: no question
    assert s == 200, out
    events = [e["event"] for e in adm.get("audit")[1]["entries"]]
    assert events.count("clock-set") == 4


def test_locking_seals_again_and_drops_sessions(sealed):
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    assert _device_api(f)[0] == 200
    assert adm.post("lock")[0] == 200
    assert _device_api(f) == (503, {"v": 2, "error": "sealed"})
    assert adm.get("fleet")[0] == 401
    assert adm.get("session")[1]["sealed"] is True


def test_changes_need_the_csrf_token_and_the_box_origin(sealed):
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    assert adm.post("enroll", {"dev": "sensor-2"}, csrf=False)[0] == 403
    assert adm.post("enroll", {"dev": "sensor-2"}, headers={"X-CSRF-Token": "0" * 32})[0] == 403
    assert adm.post("enroll", {"dev": "sensor-2"},
                    headers={"Origin": "http://evil.example"})[0] == 403
    fleet = adm.get("fleet")[1]
    assert [d["dev"] for d in fleet["devices"]] == ["sensor-1"]  # nothing was enrolled
    s, out, _ = adm.post("enroll", {"dev": "sensor-2"})
    assert s == 200 and out["bootstrap"]["dev"] == "sensor-2"
    # the cookie alone (what a cross-site form would send) changes nothing
    other = AdminClient(f.port)
    other.cookie = adm.cookie
    assert other.post("lock")[0] == 403
    assert _device_api(f)[0] == 200  # still unlocked


def test_a_session_expires_ten_minutes_after_the_operators_last_action(sealed):
    f = sealed
    adm = AdminClient(f.port)
    s, _, r = adm.login(PASSPHRASE, f.world.now())
    assert s == 200 and "Max-Age=28800" in r.getheader("Set-Cookie")
    f.world.advance(9 * 60)
    assert adm.get("session")[1]["logged_in"] is True  # a page load: ten more minutes
    f.world.advance(9 * 60)
    assert adm.get("fleet")[0] == 200  # the page's polling: alive, but not prolonged
    f.world.advance(60 + 5)
    s, out, _ = adm.get("fleet")
    assert s == 401 and out["error"] == "log in"
    assert adm.post("enroll", {"dev": "late"})[0] == 401
    assert adm.get("session")[1]["logged_in"] is False


def test_a_session_ends_eight_hours_after_login_whatever_is_done(sealed):
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    for _ in range(8 * 6):  # an action every 10 minutes less 5 s, for 8 hours
        f.world.advance(595)
        assert adm.get("session")[1]["logged_in"] is True
    f.world.advance(595)
    assert adm.get("session")[1]["logged_in"] is False


def test_wrong_passphrases_lock_the_station_out(sealed):
    f = sealed
    adm = AdminClient(f.port)
    for _ in range(5):
        assert adm.login("wrong passphrase attempt", f.world.now())[0] == 401
    s, out, r = adm.login(PASSPHRASE, f.world.now())
    assert s == 429 and int(r.getheader("Retry-After")) > 0  # even the right one, for now
    assert _device_api(f)[1]["error"] == "sealed"
    f.world.advance(31)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200


def test_guesses_are_bounded_for_the_box_as_a_whole_not_per_station(sealed):
    """Rotating station addresses no longer buys guesses: after 10 wrong passphrases in all
    (5 from each of two stations, each then locked out on its own), a third station is refused
    before any PBKDF2 runs, the right passphrase too, until the budget refills (one guess per
    6 minutes); then the operator gets in."""
    f = sealed
    for station in ("127.0.5.1", "127.0.5.2"):
        adm = AdminClient(f.port, source=station)
        for _ in range(5):
            assert adm.login("wrong passphrase attempt", f.world.now())[0] == 401
        assert adm.login(PASSPHRASE, f.world.now())[0] == 429  # its own lock
    third = AdminClient(f.port, source="127.0.5.3")
    s, out, r = third.login(PASSPHRASE, f.world.now())
    assert s == 429 and "no more passphrase guesses" in out["error"], out
    assert 0 < int(r.getheader("Retry-After")) <= 360
    f.world.advance(int(r.getheader("Retry-After")) + 1)
    assert third.login(PASSPHRASE, f.world.now())[0] == 200


def test_malformed_or_cross_site_logins_unlock_nothing_and_four_failures_lock_nothing(sealed):
    f = sealed
    adm = AdminClient(f.port)
    now = f.world.now()
    # a login from another site's page (login CSRF), even with the right passphrase
    s, out, _ = adm.request("POST", "/admin/api/login", {"passphrase": PASSPHRASE, "time": now},
                            headers={"Origin": "http://evil.example"})
    assert s == 403 and "cross-site" in out["error"], out
    for body in ({"passphrase": 12345678901234}, {"passphrase": ""}, {"passphrase": "x" * 129},
                 {"passphrase": PASSPHRASE, "time": "now"},
                 {"passphrase": PASSPHRASE, "time": -1}, {"time": now}):
        s, out, _ = adm.request("POST", "/admin/api/login", body)
        assert s == 400, (body, s, out)
    assert adm.cookie is None and adm.get("session")[1]["sealed"] is True
    assert _device_api(f)[1]["error"] == "sealed"
    for _ in range(4):  # one short of the lockout
        assert adm.login("wrong passphrase attempt", now)[0] == 401
    assert adm.login(PASSPHRASE, now)[0] == 200


def test_a_passphrase_change_reseals_the_vault_under_the_new_one(sealed):
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    s, out, _ = adm.post("passphrase", {"old": PASSPHRASE, "new": "password1234"})
    assert s == 422 and "too weak" in out["error"]  # fits the schema: a rule refuses it
    s, gen, _ = adm.get("generate")
    new = gen["passphrase"]
    assert len(new) == 29
    assert adm.post("passphrase", {"old": "wrong", "new": new})[0] == 403
    other = AdminClient(f.port)
    assert other.login(PASSPHRASE)[0] == 200
    assert adm.post("passphrase", {"old": PASSPHRASE, "new": new})[0] == 200
    assert other.get("fleet")[0] == 401 and adm.get("fleet")[0] == 200  # the others end
    f.stop_box()
    f.start_box(cold=True)  # a power cycle: sealed again
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 401
    assert adm.login(new, f.world.now())[0] == 200
    assert f.check("sensor-1") == ("ok", CFG)


def test_auto_unseal_opens_the_box_at_power_on(sealed):
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    assert adm.post("auto-unseal", {"on": True})[0] == 200
    f.stop_box()
    f.start_box(cold=True)
    assert _device_api(f)[1] == {"v": 2, "error": "clock"}  # open, but the clock is not set
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    assert adm.post("clock", {"time": f.world.now()})[0] == 200
    assert f.check("sensor-1") == ("ok", CFG)
    assert adm.post("auto-unseal", {"on": False})[0] == 200
    f.stop_box()
    f.start_box(cold=True)
    assert _device_api(f)[1]["error"] == "sealed"


def _encodings(secret):
    """``secret`` (bytes) as the code writes secrets anywhere: raw, hex, base32, base64."""
    out = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    b32 = base64.b32encode(secret)
    out |= {b32, b32.rstrip(b"="), b32.lower(), b32.rstrip(b"=").lower(),
            base32.encode(secret, False).encode()}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        b = enc(secret)
        out |= {b, b.rstrip(b"=")}
    return out


def test_no_secret_rests_in_clear_on_the_box_flash_or_nvs(sealed, tmp_path):
    """After set-up, enrolment, a config with secrets and a device provisioned: the box's flash
    image and NVS hold none of the fleet's secrets in any encoding the code uses. The secrets
    are known here because the test opens the store with the passphrase, as the operator can."""
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    s, boot2, _ = adm.post("enroll", {"dev": "sensor-2"})
    assert s == 200
    assert f.check("sensor-1") == ("ok", CFG)
    f.stop_box()
    out = f.boxrun(
        "from configurator_fw import vault\nfrom configurator_fw.store import Store\n"
        "from configurator_fw.vault import Vault\nfrom shared.board import Board\n"
        "from shared import protocol\nimport json\nb = Board()\n"
        f"k = vault.unwrap(b, {PASSPHRASE!r})\ns = Store(b, Vault(k))\n"
        "print(json.dumps({'vault': k.hex(), 'mk': s.master_key().hex(),\n"
        "  'totp': {d: s.totp_secret(d).hex() for d in s.device_ids()},\n"
        "  'dk': {d: protocol.device_key(s.master_key(), d).hex() for d in s.device_ids()}}))")
    keys = json.loads(out.strip().splitlines()[-1])
    secrets = {"vault key": bytes.fromhex(keys["vault"]), "master key": bytes.fromhex(keys["mk"]),
               "AP passphrase": PSK.encode(), "operator passphrase": PASSPHRASE.encode()}
    for dev in keys["totp"]:
        secrets["T of " + dev] = bytes.fromhex(keys["totp"][dev])
        secrets["DK of " + dev] = bytes.fromhex(keys["dk"][dev])
    assert len(keys["totp"]) == 2
    assert secrets["T of sensor-2"].hex() == boot2["bootstrap"]["totp"]
    for what, value in (("wifi password", CFG["wifi"][0]["password"]),
                        ("mqtt password", CFG["mqtt"]["password"]),
                        ("api key", CFG["api_keys"]["grafana"])):
        secrets[what] = value.encode()
    dumps = {"flash": upy.flash_image(f.dir, "box").read_bytes()}
    dumps["NVS"] = (upy.device_dir(f.dir, "box") / "nvs.bin").read_bytes()  # the partition
    assert b"cfgvault" in dumps["NVS"] and len(dumps["flash"]) == 2 * 1024 * 1024
    found = [(what, where) for what, value in secrets.items() for where, dump in dumps.items()
             for form in _encodings(value) if form in dump]
    assert found == []
    # the search can find what is there: the sealed AP's key is kept in clear, on purpose
    assert any(b"sealed-ap-key-1" in d for d in dumps.values())


def test_ten_stations_at_110_kb_while_an_admin_browser_polls(tmp_path):
    """The box at the board's heap serves 10 devices at once while a logged-in admin page
    reloads itself and the fleet overview without pause: every device provisions, the box
    prints no MemoryError, and every answer the page gets is a good one. With 10 stations
    and a browser over the box's 7-connection budget the box may close a connection at
    once (by design: it sheds load rather than run out of sockets); the page's script
    shows "the box does not answer" and polls again, and so does this browser."""
    import subprocess
    import threading

    f = Fleet(tmp_path)
    f.set_defaults(CFG)
    names = ["s%02d" % i for i in range(10)]
    for n in names:
        f.enroll(n)
    f.start_box()
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE)[0] == 200
    stop = threading.Event()
    seen = {"free": [], "page": 0, "fails": [], "refused": 0}

    def polled(call):  # one request as the page makes it: a closed connection is retried
        try:
            return call()
        except ConnectionError:  # http.client's RemoteDisconnected included
            seen["refused"] += 1
            return None

    def browser():
        while not stop.is_set():
            got = polled(lambda: adm.get("fleet"))
            if got and got[0] == 200:
                seen["free"].append(got[1]["mem"]["free"])
            elif got:
                seen["fails"].append(got[0])
            got = polled(lambda: AdminClient(f.port).request("GET", "/admin"))
            if got:
                ok = got[0] == 200 and got[2].getheader("Content-Encoding") == "gzip"
                seen["page"] += ok
                if not ok:
                    seen["fails"].append(got[0])

    t = threading.Thread(target=browser)
    t.start()
    try:
        script = ("from client_fw.device import Device\nfrom shared.board import Board\n"
                  "print('STATUS', Device(Board()).check(force=True))")
        procs = [subprocess.Popen(upy.board_cmd(script, upy.ESP32_HEAP), text=True,
                                  cwd=upy.device_dir(tmp_path, n),
                                  env=upy.board_env(tmp_path, n), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for n in names]
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        stop.set()
        t.join(60)
        f.stop_box()
    assert [o.strip().splitlines()[-1] for o in outs] == ["STATUS ok"] * 10
    log = f.box_log_text()
    assert "MemoryError" not in log and "out of memory" not in log
    assert seen["fails"] == [] and seen["page"] > 0 and seen["free"]
    print("box heap free while serving 10 stations and the page: min %d B over %d polls"
          " (%d page loads, %d connections shed)"
          % (min(seen["free"]), len(seen["free"]), seen["page"], seen["refused"]))


def test_rekey_and_overrides_through_the_admin_api(sealed):
    """Re-key: the old secrets open nothing, the new ones provision. Overrides: shown masked,
    a masked value keeps its secret, a wrong key is named, a device without them is unchanged."""
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    assert f.check("sensor-1") == ("ok", CFG)
    old = dict(f.boots["sensor-1"])
    s, out, _ = adm.post("rekey", {"dev": "sensor-1"})
    assert s == 200 and out["bootstrap"]["totp"] != old["totp"]
    assert out["bootstrap"]["dk"] == old["dk"]  # fixed by the master key and the id
    assert f.check("sensor-1")[0] == "box not authentic"  # the old pair: a decoy answers
    f.write_bootstrap("sensor-1", out["bootstrap"])
    f.boots["sensor-1"] = out["bootstrap"]
    assert f.check("sensor-1") == ("ok", CFG)
    s, out, _ = adm.post("overrides", {"dev": "sensor-1", "config": {
        "mqtt": {"host": "m2.local", "password": "override secret 5"}}})
    assert s == 200
    s, shown, _ = adm.get("config?dev=sensor-1")
    assert shown["config"] == {"mqtt": {"host": "m2.local", "password": "********"}}
    s, out, _ = adm.post("overrides", {"dev": "sensor-1", "config": {
        "mqtt": {"host": "m3.local", "password": "********", "tls": "yes"}}})
    assert s == 422 and "mqtt.tls" in out["error"]
    s, out, _ = adm.post("overrides", {"dev": "sensor-1", "config": {
        "mqtt": {"host": "m3.local", "password": "********"}, "name": "one"}})
    assert s == 200
    s, out, _ = adm.post("overrides", {"dev": "sensor-1", "config": {"api_keys": {
        "new": "********"}}})
    assert s == 422 and "api_keys.new" in out["error"]  # a mask with nothing to keep
    want = {**CFG, "mqtt": {**CFG["mqtt"], "host": "m3.local", "password": "override secret 5"},
            "name": "one"}
    f.world.advance(30)  # a TOTP step is used once: the next check is in the next step
    assert f.check("sensor-1") == ("ok", want)
    assert adm.post("overrides", {"dev": "nobody", "config": {}})[0] == 404
    events = [e["event"] for e in adm.get("audit")[1]["entries"]]
    assert "re-keyed" in events and events.count("config-changed") == 2


def test_the_page_api_shows_what_a_device_receives_merged_and_masked(sealed):
    """GET /admin/api/config?dev=D&merged=1: the defaults and D's overrides merged, as the
    device receives them (issue 17 item 7), secrets masked, with its version and its size
    against the 16 KB cap; the stored parts alone stay available as before."""
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    s, out, _ = adm.post("overrides", {"dev": "sensor-1", "config": {
        "name": "first", "api_keys": {"influx": "tok-123"}}})
    assert s == 200, out
    s, out, _ = adm.request("GET", "/admin/api/config?dev=sensor-1&merged=1")
    assert s == 200 and out["merged"] is True and out["cap"] == 16384, out
    from configurator_fw.store import merge

    want = merge(CFG, {"name": "first", "api_keys": {"influx": "tok-123"}})  # RFC 7386
    assert out["size"] == len(json.dumps(want)), out  # the bytes the device gets, as JSON
    assert out["config"]["name"] == "first"
    assert out["config"]["api_keys"] == {k: "********" for k in want["api_keys"]}
    assert out["config"]["wifi"][0]["password"] == "********"
    assert "tok-123" not in json.dumps(out) and "wifi secret" not in json.dumps(out)
    s, parts, _ = adm.request("GET", "/admin/api/config?dev=sensor-1")  # the overrides alone
    assert s == 200 and "wifi" not in parts["config"] and "merged" not in parts
    s, _, _ = adm.request("GET", "/admin/api/config?dev=sensor-9&merged=1")
    assert s == 404


def test_only_the_config_edits_take_large_bodies_and_none_too_many_values(sealed):
    """Logged in, a config edit may send up to 8 KB; any other admin request keeps the
    transport's 2 KB (a parsed 8 KB body takes more heap than the box spares for it), and no
    body may hold more than 256 JSON values: 413 before anything is parsed or changed."""
    f = sealed
    adm = AdminClient(f.port)
    assert adm.login(PASSPHRASE, f.world.now())[0] == 200
    cfg = dict(CFG, notes={"n%02d" % i: "x" * 100 for i in range(30)})  # ~3.7 KB
    s, out, _ = adm.post("defaults", {"config": cfg})
    assert s == 200, out
    s, out, _ = adm.post("enroll", {"dev": "big-1", "pad": "y" * 3000})
    assert s == 413, out  # over 2 KB on a route that takes small bodies: not read
    s, out, _ = adm.post("enroll", {"dev": "big-1", "pad": "y"})
    assert s == 400 and "not a field" in out["error"], out  # a field off its schema
    many = dict(CFG, many={"k%03d" % i: i for i in range(300)})
    s, out, _ = adm.post("defaults", {"config": many})
    assert s == 413 and "JSON values" in out["error"], out
    assert adm.get("config")[1]["config"]["notes"]["n29"] == "x" * 100  # the 3.7 KB one stays
    assert "Traceback" not in f.box_log_text()
