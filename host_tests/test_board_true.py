# The firmware on the board-true harness where the old harness was kinder than the board: a box
# that powers on at 2000-01-01, the port's WLAN status codes as the client sees them.
import json

import pytest

import upy_harness as upy
from fleet import PSK, SSID, Fleet

CFG = {"mqtt": {"host": "mqtt.example.net", "port": 8883}, "ntp": "pool.ntp.org"}


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path, set_time=False)
    f.set_defaults(CFG)
    f.enroll("sensor-1")
    yield f
    f.stop_box()


def test_a_box_powered_on_without_trusted_time_refuses_auth_until_the_operator_sets_it(fleet):
    fleet.start_box(cold=True)
    assert "clock not set since power-on" in fleet.box_log_text()
    assert fleet.check("sensor-1") == ("box busy", None)  # 503 "clock": nothing judged
    assert fleet.devices()["sensor-1"]["fails"] == 0
    fleet.set_time()  # admin.set_time over mpremote; the box restarts by a software reset
    assert fleet.check("sensor-1") == ("ok", CFG)
    fleet.stop_box()
    fleet.start_box()  # a reset (mpremote reset, a crash): the ESP32's clock runs on
    fleet.world.advance(30)
    assert fleet.check("sensor-1") == ("unchanged", CFG)
    fleet.stop_box()
    fleet.world.advance(30)
    fleet.start_box(cold=True)  # a power cut: back to 2000-01-01, not trusted
    assert fleet.check("sensor-1") == ("box busy", CFG)


def test_the_persisted_floor_alone_never_makes_the_clock_trusted(fleet):
    fleet.set_time()
    fleet.start_box()
    assert fleet.check("sensor-1")[0] == "ok"  # the floor is now past the world's start
    fleet.stop_box()
    fleet.start_box(cold=True)
    assert fleet.check("sensor-1")[0] == "box busy"
    # and the operator cannot set the clock back behind it
    with pytest.raises(AssertionError, match="before the last time this box accepted"):
        fleet.set_time(fleet.world.now() - 3600)


def test_a_box_with_a_ds3231_is_trusted_after_a_power_cycle(fleet):
    (upy.device_dir(fleet.dir, "box") / "ds3231.json").write_text(
        json.dumps({"offset": -900000000, "osf": True}))  # fitted, battery new, never set
    fleet.start_box(cold=True)
    assert fleet.check("sensor-1")[0] == "box busy"  # an unset DS3231 is not a source
    assert "DS3231 set too" in fleet.set_time()
    fleet.stop_box()
    fleet.world.advance(3600)
    fleet.start_box(cold=True)
    assert "clock DS3231" in fleet.box_log_text()
    assert fleet.check("sensor-1") == ("ok", CFG)


def test_an_absent_box_and_a_wrong_passphrase_are_reported_as_such(fleet):
    assert fleet.check("sensor-1") == ("box not found", None)  # its AP is not up
    fleet.start_box()
    fleet.devrun("sensor-1", "from shared.board import Board\nn = Board().nvs('cfgbox')\n"
                 "n.set_blob('psk', b'not the passphrase')\nn.commit()")
    assert fleet.check("sensor-1") == ("wrong AP passphrase", None)


STALE = f"""
from shared.board import Board
from client_fw import provision
import time
b = Board()
sta = b.wlan('sta')
sta.active(True)
sta.connect({SSID!r}, {PSK!r})  # the box is not up yet: the attempt fails, reason 201
time.sleep_ms(3000)
first = sta.status()
sta.disconnect()  # stops retrying; the reason stands until an IP is got
ap = b.wlan('ap')  # the box's AP comes up meanwhile
ap.config(ssid={SSID!r}, key={PSK!r}, authmode=3)
ap.active(True)
print('STALE', first, sta.status(), provision._join(sta, {SSID!r}, {PSK!r})[0])
"""


def test_a_stale_reason_from_an_earlier_attempt_does_not_fail_the_retry(tmp_path):
    out = upy.device_run(STALE, tmp_path, "d1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "STALE 201 201 127.0.4.2" in out.stdout
