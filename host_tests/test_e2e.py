# Provisioning end to end: the box and devices as separate MicroPython processes running the .mpy
# bundles on the emulated AP, within the ESP32's heap.
import pytest

from fleet import Fleet

CFG = {"wifi": [{"ssid": "plant-floor", "password": "s3cret-wifi"}],
       "mqtt": {"host": "mqtt.example.net", "port": 8883, "tls": True, "user": "fleet",
                "password": "mqtt-pass"},
       "ntp": "pool.ntp.org", "api_keys": {"weather": "k-123"}}


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path)
    f.set_defaults(CFG)
    yield f
    f.stop_box()


def test_device_provisions_and_stores_exactly_the_box_config(fleet):
    fleet.enroll("sensor-1")
    fleet.set_overrides("sensor-1", {"name": "boiler room", "mqtt": {"user": "sensor-1"}})
    fleet.start_box()
    status, cfg = fleet.check("sensor-1")
    assert status == "ok"
    want = dict(CFG, name="boiler room", mqtt=dict(CFG["mqtt"], user="sensor-1"))
    assert cfg == want
    d = fleet.devices()["sensor-1"]
    assert d["state"] == "provisioned" and d["ack"] == d["ver"]
    assert d["st"]["fw"] == "1.0.0" and d["st"]["ver"] == d["ver"] and d["st"]["heap"] > 0
    # the stored file holds no plaintext
    raw = fleet.stored_file("sensor-1").read_bytes()
    assert b"s3cret-wifi" not in raw and b"mqtt-pass" not in raw
