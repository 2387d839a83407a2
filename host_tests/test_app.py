# Devices that use what they get, on the board-true harness: the reference application joins the
# site's WiFi from the delivered list, connects to a real mosquitto over TLS with the delivered CA
# and its own credential, publishes its status; refusals are reported to the box at the next ack;
# the broker's ACL confines each device; whatever fails at boot, the application starts and is
# told the state.
import contextlib
import json
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import upy_harness as upy
from fleet import Fleet
from mqttworld import SiteWorld, connack

PROBE = """
def main(config):
    print('STATE', config.state, '|', config.status, '|', config.version, '|', config.error)
    print('HOST', config.get('mqtt.host'), config.get('wifi.0', 'no-such-path'))
    for net in config.items('wifi'):
        print('NET', net['ssid'])
"""


def other_ca(name):
    """A CA that is not the broker's (PEM)."""
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2000, 1, 1))
            .not_valid_after(datetime.datetime(2099, 1, 1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def ca_bundle(size):
    """Other CAs' certificates up to about ``size`` bytes: a site's CA bundle."""
    out = ""
    while len(out) < size:
        out += other_ca("site CA %d" % len(out))
    return out


@contextlib.contextmanager
def site(tmp_path, devices=("sensor-1",), frozen=False, start_box=True, **kw):
    f = Fleet(tmp_path, app=True, clients_frozen=frozen)
    for dev in devices:
        f.enroll(dev)
    w = SiteWorld(f, devices, **kw)
    if start_box:
        f.start_box()
    try:
        yield f, w
    finally:
        f.stop_box()
        w.close()


def due(f):
    """Move the world past the devices' check interval (an hour): the next boot checks."""
    f.world.advance(3601)


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def status_of(w, dev, **want):
    return w.monitor.wait_for(lambda t, b: t == "devices/%s/status" % dev and all(
        b.get(k) == v for k, v in want.items()), timeout=300)


@pytest.mark.parametrize("frozen", [False, True], ids=["mpy", "frozen"])
def test_a_16k_config_with_a_14k_ca_bundle_boots_and_connects_over_tls_at_110k(tmp_path,
                                                                                frozen):
    bundle = ca_bundle(14400)
    with site(tmp_path, frozen=frozen, ca_extra=bundle) as (f, w):
        out = ok(f.boot("sensor-1"))
        assert "cfgbox: ok" in out and "cfgbox: config provisioned" in out, out
        stored = f.stored_config("sensor-1")  # the host's reading of the device's flash
        assert 15000 < len(json.dumps(stored)) <= 16384
        assert len(stored["mqtt"]["ca"]) > 14000  # the broker's CA last, after the bundle
        assert "app: joined plant-floor" in out and "app: connected" in out, out
        st = status_of(w, "sensor-1", state="provisioned")
        assert st is not None, out + w.mosquitto.log_text()
        ver = f.devices()["sensor-1"]["ver"]
        assert st["ver"] == ver and st["fw"] == "1.1.0" and st["online"] is True
        assert st["ssid"] == "plant-floor" and st["heap"] > 0


def test_the_site_network_and_the_broker_are_reached_only_through_the_site_wifi(tmp_path):
    # the config's first network is absent, the second has a wrong key: each is reported by
    # its reason; the third is the site's
    nets = [{"ssid": "gone-ap", "password": "whatever1"},
            {"ssid": "plant-floor", "password": "not the key"}]
    with site(tmp_path) as (f, w):
        f.set_defaults(dict(_defaults(f, w), wifi=nets + _defaults(f, w)["wifi"]))
        due(f)
        out = ok(f.boot("sensor-1"))
        assert "gone-ap: AP not found" not in out  # joined on the third: nothing reported
        assert "app: joined plant-floor" in out, out
        assert status_of(w, "sensor-1") is not None
        # only the wrong networks: the app reports each reason, and reaches no broker
        f.set_defaults(dict(_defaults(f, w), wifi=nets))
        due(f)
        out = ok(f.boot("sensor-1", attempts=1))
        assert "wifi: gone-ap: AP not found; plant-floor: wrong passphrase" in out, out


def _defaults(f, w):
    return {"wifi": [{"ssid": "plant-floor", "password": w.site.conf["key"]}],
            "mqtt": {"host": w.broker.settings["host"], "port": w.broker.settings["port"],
                     "tls": True, "keepalive": 60, "ca": w.broker.ca_pem()}}


def test_a_wrong_ca_is_refused_and_the_next_ack_reports_it(tmp_path):
    with site(tmp_path) as (f, w):
        f.set_defaults(dict(_defaults(f, w), mqtt=dict(_defaults(f, w)["mqtt"],
                                                       ca=other_ca("not the broker's CA"))))
        out = ok(f.boot("sensor-1", attempts=1))
        # the handshake failed: the broker's certificate is not signed by the config's CA
        assert "app: mqtt: tls: certificate is not correctly signed by the trusted CA" in out, out
        assert f.devices()["sensor-1"]["st"]["err"] is None  # not yet told
        out = ok(f.boot("sensor-1", attempts=1))  # the recorded error makes the check due
        err = f.devices()["sensor-1"]["st"]["err"]
        assert err == "mqtt: tls: certificate is not correctly signed by the trusted CA", out
        assert w.monitor.wait_for(lambda t, b: True, timeout=1) is None
        # each refused handshake gives its socket back: lwIP has 10 in all
        out = ok(f.boot("sensor-1", attempts=12))
        assert out.count("not correctly signed by the trusted CA") == 12, out


def test_the_broker_is_verified_by_name_as_well_as_by_ca(tmp_path):
    # the right broker, the right CA, reached by another name: its certificate is not for it
    with site(tmp_path, aliases=("other.plant.example",)) as (f, w):
        f.set_defaults(dict(_defaults(f, w), mqtt=dict(_defaults(f, w)["mqtt"],
                                                       host="other.plant.example")))
        out = ok(f.boot("sensor-1", attempts=1))
        assert "app: joined plant-floor" in out and "app: connected" not in out, out
        assert "app: mqtt: tls: certificate Common Name (CN) does not match" in out, out


def test_a_broker_certificate_dated_after_2000_fails_on_a_board_whose_clock_is_unset(
        tmp_path, monkeypatch):
    # mbedTLS checks dates against the board's RTC, which starts at 2000-01-01 at every
    # power-on: a certificate issued today is "not yet valid" to it. This is why the fleet's
    # broker certificates are dated from 2000 (tools/broker.py), and what a public CA's needs
    import datetime

    import tools.broker

    monkeypatch.setattr(tools.broker, "NOT_BEFORE", datetime.datetime(
        2026, 1, 1, tzinfo=datetime.timezone.utc))
    with site(tmp_path) as (f, w):
        out = ok(f.boot("sensor-1", attempts=1))
        assert "app: mqtt: tls: certificate validity starts in the future" in out, out


def test_a_wrong_password_is_refused_by_mosquitto_and_reported_at_once(tmp_path):
    with site(tmp_path) as (f, w):
        w.give_credential("sensor-1", "not-what-the-broker-has-1")  # the box's config only
        out = ok(f.boot("sensor-1", attempts=1))
        assert "app: mqtt: not authorized (CONNACK 5)" in out, out
        # a refused credential asks the box for a new config at once; that check's ack tells
        assert "app: checked with the box: unchanged" in out, out
        assert f.devices()["sensor-1"]["st"]["err"] == "mqtt: not authorized (CONNACK 5)"
        assert "not authorised" in w.mosquitto.log_text()


def test_a_revoked_broker_credential_is_refused_and_reported(tmp_path):
    with site(tmp_path) as (f, w):
        ok(f.boot("sensor-1"))
        assert status_of(w, "sensor-1") is not None
        w.broker.write({}, False)  # sensor-1 left out of the broker's password file
        w.mosquitto.restart()
        w.monitor.close()
        out = ok(f.boot("sensor-1", attempts=1))
        assert "app: mqtt: not authorized (CONNACK 5)" in out, out
        assert f.devices()["sensor-1"]["st"]["err"] == "mqtt: not authorized (CONNACK 5)"
        w.monitor.close = lambda: None


ACL_PROBE = """
from client_fw.apps import mqtt_status
from umqtt.simple import MQTTClient


def main(config):
    app = mqtt_status.StatusApp(config, MQTTClient)
    assert app.join()
    client = app.connect()
    client.publish(b'devices/sensor-2/status', b'{"forged": true}', retain=True)
    client.publish(b'devices/sensor-1/status', b'{"mine": true}', retain=True)
    client.disconnect()
    print('PUBLISHED')
"""


def test_the_acl_confines_a_device_to_its_own_topics(tmp_path):
    with site(tmp_path, devices=("sensor-1", "sensor-2")) as (f, w):
        out = ok(f.boot("sensor-1", app=ACL_PROBE))
        assert "PUBLISHED" in out, out
        # one connection keeps its order: the own topic's message came after the forged one
        assert w.monitor.wait_for(lambda t, b: b.get("mine")) is not None
        assert not [m for m in w.monitor.messages if m[1] == "devices/sensor-2/status"]


def test_rotated_credentials_reach_a_running_device_and_the_old_one_is_refused(tmp_path):
    with site(tmp_path) as (f, w):
        old = w.passwords["sensor-1"]
        argv, cwd, env = f.boot_cmd("sensor-1", publishes=2)
        dev = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            first = status_of(w, "sensor-1")
            assert first is not None
            new = w.give_credential("sensor-1")  # the operator rotates: a new config
            w.broker.write(w.passwords)
            w.mosquitto.restart()  # every session cut: each reconnects with what it has
            second = w.monitor.wait_for(lambda t, b: b.get("ver", 0) > first["ver"])
            out = dev.communicate(timeout=120)[0]
        finally:
            dev.kill()
        assert second is not None, out
        assert "app: mqtt: not authorized (CONNACK 5)" in out, out
        assert "app: checked with the box: ok" in out, out
        assert connack(w.broker, "sensor-1", old) == 5  # the broker refuses the old one
        assert connack(w.broker, "sensor-1", new) == 0


# -- whatever fails at boot, the application starts and is told
def test_a_corrupt_store_starts_the_app_with_state_none(tmp_path):
    f = Fleet(tmp_path, app=True)
    f.enroll("sensor-1")
    f.set_defaults({"mqtt": {"host": "broker.example"}})
    f.start_box()
    assert f.check("sensor-1")[0] == "ok"
    f.stop_box()
    due(f)
    out = ok(f.boot("sensor-1", app=PROBE))
    assert "STATE stale | box not found | 2 | None" in out and "HOST broker.example" in out
    raw = bytearray(f.stored("sensor-1"))
    raw[40] ^= 1
    f.fs("sensor-1").write("config.bin", bytes(raw))
    out = ok(f.boot("sensor-1", app=PROBE))
    assert "STATE none | box not found | 0 | " in out and "HOST None" in out, out


def test_a_memoryerror_in_the_check_still_starts_the_app_with_its_stored_config(tmp_path):
    f = Fleet(tmp_path, app=True)
    f.enroll("sensor-1")
    f.set_defaults({"mqtt": {"host": "broker.example"},
                    "wifi": [{"ssid": "a"}, {"ssid": "b"}]})
    f.start_box()
    try:
        assert f.check("sensor-1")[0] == "ok"
        due(f)
        # inside the exchange (the provisioning code's own guard) ...
        inner = ("import client_fw.provision as p\n\ndef boom(phase):\n"
                 "    raise MemoryError('injected')\n\np.progress = boom\n")
        out = ok(f.boot("sensor-1", app=PROBE, before=inner))
        assert "STATE stale | unexpected answer (MemoryError) | 2 |" in out, out
        # ... and around it (main.py's)
        outer = ("import client_fw.device as d\n\ndef boom(self, **kw):\n"
                 "    raise MemoryError('injected')\n\nd.Device.check = boom\n")
        out = ok(f.boot("sensor-1", app=PROBE, before=outer))
        assert "cfgbox: check failed (MemoryError)" in out, out
        assert "STATE stale | check failed (MemoryError) | 2 |" in out, out
        assert "HOST broker.example no-such-path" in out and "NET a\nNET b" in out, out
    finally:
        f.stop_box()


RECHECK_PROBE = """
import sys


class Boom:
    def __init__(self, board):
        pass

    def check(self, force=False):
        raise MemoryError('injected')


class Fake:  # what `from client_fw.device import Device, release` then finds
    Device = Boom

    @staticmethod
    def release():
        pass


def main(config):
    # the provisioning code cannot load again inside the app (a divided heap): the app's
    # check is a status, not the app's end
    sys.modules['client_fw.device'] = Fake
    status = config.check()
    print('RECHECK', config.state, '|', status, '|', config.version, config.get('mqtt.host'))
"""


def test_a_check_the_app_asks_for_that_cannot_load_is_a_status(tmp_path):
    f = Fleet(tmp_path, app=True)
    f.enroll("sensor-1")
    f.set_defaults({"mqtt": {"host": "broker.example"}})
    f.start_box()
    try:
        out = ok(f.boot("sensor-1", app=RECHECK_PROBE))
        assert "RECHECK stale | check failed (MemoryError) | 2 broker.example" in out, out
    finally:
        f.stop_box()


def test_no_bootstrap_starts_the_app_with_state_none(tmp_path):
    upy.World(tmp_path)
    f = Fleet.__new__(Fleet)  # a board never commissioned: no box, no bootstrap
    f.dir, f.client_bundle, f.clients_frozen = tmp_path, "client+app", False
    upy.provision_board(tmp_path, "blank", "client+app")
    out = ok(f.boot("blank", app=PROBE, cold=True))
    assert ("STATE none | no bootstrap secrets in NVS | 0 | no bootstrap secrets in NVS"
            in out), out


def test_a_device_authenticates_with_its_client_certificate(tmp_path):
    # the broker requires a client certificate and takes its name as the user: the device's
    # config carries its own certificate and key (fleet broker --client-certs)
    with site(tmp_path, client_certs=True) as (f, w):
        out = ok(f.boot("sensor-1"))
        assert "app: connected" in out, out + w.mosquitto.log_text()
        stored = f.stored_config("sensor-1")["mqtt"]
        assert stored["cert"].startswith("-----BEGIN CERTIFICATE-----")
        assert stored["key"].startswith("-----BEGIN PRIVATE KEY-----")
        assert status_of(w, "sensor-1", state="provisioned") is not None
        # the same credential without the certificate: the broker's TLS refuses the device
        f.set_overrides("sensor-1", {"mqtt": {"user": "sensor-1", "password": "x" * 24}})
        due(f)
        out = ok(f.boot("sensor-1", attempts=1))
        assert "app: mqtt: " in out and "app: connected" not in out, out
