# The operator's fleet CLI (tools/fleet.py): every command, its errors, the dry-run output of the
# flashing commands, and the fleet file working as the box's store on the emulated board.
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
import upy_harness as upy
from adminhttp import AdminClient
from fleet import free_port

from shared import base32

ROOT = Path(__file__).resolve().parent.parent
PW = "cli test passphrase, long 42"


def fleet(tmp_path, *args, pw=PW, env=None):
    e = dict(os.environ, CFGBOX_PASSPHRASE=pw)
    e.pop("DRY_RUN", None)
    e.pop("PORT", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "tools.fleet", "--file",
                           str(tmp_path / "f.cfgbox"), *args], cwd=ROOT, env=e,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def made(tmp_path):
    port = free_port()
    r = fleet(tmp_path, "init", "--box", "box-cli", "--ssid", "cli-net", "--port", str(port))
    assert r.returncode == 0, r.stderr
    return tmp_path, port


def test_init_writes_a_sealed_fleet_file_and_refuses_to_overwrite_it(made):
    tmp_path, _ = made
    f = tmp_path / "f.cfgbox"
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    data = json.loads(f.read_text())
    assert data["format"] == "cfgbox-fleet/1"
    assert {"store/box.json", "store/vault.json", "store/mk.bin", "store/psk.bin"} <= set(
        data["files"])
    assert PW.encode() not in f.read_bytes()
    vault = json.loads(base64.b64decode(data["files"]["store/vault.json"]))
    assert vault["kdf"] == "pbkdf2-sha256" and vault["it"] == 20000
    r = fleet(tmp_path, "init", "--box", "b", "--ssid", "s")
    assert r.returncode == 2 and "exists" in r.stderr and "--force" in r.stderr
    assert json.loads(f.read_text()) == data  # untouched


def test_init_refuses_a_weak_passphrase_and_can_generate_one(tmp_path):
    r = fleet(tmp_path, "init", "--box", "b", "--ssid", "s", pw="password1234")
    assert r.returncode == 2 and "too weak" in r.stderr
    assert not (tmp_path / "f.cfgbox").exists()
    # the box's estimate passes it (16 characters, two classes, no run it knows); zxcvbn,
    # the host's check on top, knows the keyboard's columns
    from shared import passphrase

    assert passphrase.bits("1q2w3e4r5t6y7u8i") >= passphrase.MIN_BITS
    r = fleet(tmp_path, "init", "--box", "b", "--ssid", "s", pw="1q2w3e4r5t6y7u8i")
    assert r.returncode == 2 and "too guessable (zxcvbn" in r.stderr, r.stderr
    assert not (tmp_path / "f.cfgbox").exists()
    r = fleet(tmp_path, "init", "--box", "b", "--ssid", "s", "--generate", pw="")
    assert r.returncode == 0, r.stderr
    gen = r.stdout.split("admin passphrase (shown once, write it down): ")[1].split()[0]
    assert fleet(tmp_path, "list", pw=gen).returncode == 0
    assert fleet(tmp_path, "list", pw="").returncode == 2  # no terminal, no passphrase


def test_enroll_list_qr_revoke(made):
    tmp_path, _ = made
    assert fleet(tmp_path, "enroll", "sensor-1").returncode == 0
    r = fleet(tmp_path, "enroll", "sensor-1")
    assert r.returncode == 2 and "already enrolled" in r.stderr
    r = fleet(tmp_path, "enroll", "bad id!")
    assert r.returncode == 2 and "device id" in r.stderr
    r = fleet(tmp_path, "list")
    assert r.returncode == 0 and "sensor-1" in r.stdout and "enrolled" in r.stdout
    assert "1 devices" in r.stdout
    r = fleet(tmp_path, "qr", "sensor-1")
    assert r.returncode == 0 and "\u2588" in r.stdout  # drawn with block characters
    uri = r.stdout.strip().splitlines()[-1]
    totp = pyotp.parse_uri(uri)  # an independent reader of the URI an authenticator scans
    assert totp.name == "sensor-1" and totp.issuer == "box-cli"
    sys.path.insert(0, str(ROOT))
    from tools import fleet as cli

    os.environ["CFGBOX_PASSPHRASE"] = PW
    try:
        boot = cli.Fleet(tmp_path / "f.cfgbox").bootstrap("sensor-1")
    finally:
        del os.environ["CFGBOX_PASSPHRASE"]
    assert base32.decode(totp.secret) == bytes.fromhex(boot["totp"])
    r = fleet(tmp_path, "qr", "sensor-9")
    assert r.returncode == 2 and "no device sensor-9" in r.stderr and "sensor-1" in r.stderr
    r = fleet(tmp_path, "revoke", "sensor-1")
    assert r.returncode == 0 and "revoked sensor-1" in r.stdout
    assert "revoked" in fleet(tmp_path, "list").stdout
    before = (tmp_path / "f.cfgbox").read_bytes()
    r = fleet(tmp_path, "revoke", "sensor-1")  # twice: said, and the file is left alone
    assert r.returncode == 0 and "already revoked" in r.stdout
    assert (tmp_path / "f.cfgbox").read_bytes() == before
    r = fleet(tmp_path, "revoke", "sensor-9")
    assert r.returncode == 2 and "no device sensor-9" in r.stderr


def test_set_config_names_the_wrong_key(made, tmp_path):
    tmp, _ = made
    bad = tmp / "bad.json"
    bad.write_text(json.dumps({"mqtt": {"port": 1883}}))
    r = fleet(tmp, "set-config", str(bad))
    assert r.returncode == 2 and "mqtt.host" in r.stderr
    bad.write_text("{not json")
    r = fleet(tmp, "set-config", str(bad))
    assert r.returncode == 2 and "bad.json" in r.stderr
    good = tmp / "good.json"
    good.write_text(json.dumps({"ntp": "pool.ntp.org"}))
    r = fleet(tmp, "set-config", str(good))
    assert r.returncode == 0 and "version 2" in r.stdout
    # a near-miss of a known section is refused with a "did you mean"; an app's own section
    # (far from every known one, or named with --app-section) passes
    for typo, known in (("mqqt", "mqtt"), ("Wifi", "wifi"), ("api_key", "api_keys"),
                        ("nameq", "name"), ("ntpp", "ntp"), ("wfii", "wifi")):
        bad.write_text(json.dumps({typo: {"x": 1}}))
        r = fleet(tmp, "set-config", str(bad))
        assert r.returncode == 2 and "%r looks like %r" % (typo, known) in r.stderr, r.stderr
    bad.write_text(json.dumps({"wiki": {"x": 1}, "app": {"status_s": 60}}))
    assert fleet(tmp, "set-config", str(bad)).returncode == 2  # wiki is wifi with one change
    r = fleet(tmp, "set-config", str(bad), "--app-section", "wiki")
    assert r.returncode == 0 and "version 3" in r.stdout, r.stderr


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.write_text("not json"), "corrupt"),
    (lambda p: p.write_text(json.dumps({"format": "other"})), "not a cfgbox-fleet/1 file"),
    (lambda p: p.write_text(json.dumps({"format": "cfgbox-fleet/1", "files": {
        "store/vault.json": "!!"}})), "does not decode"),
    (lambda p: p.write_text(json.dumps({"format": "cfgbox-fleet/1", "files": {
        "../evil": ""}})), "corrupt"),
    (lambda p: p.unlink(), "no such fleet file"),
])
def test_a_damaged_or_missing_fleet_file_is_a_clear_error(made, damage, message):
    tmp_path, _ = made
    damage(tmp_path / "f.cfgbox")
    r = fleet(tmp_path, "list")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_unpacking_refuses_names_outside_its_folder_before_writing_anything(tmp_path):
    sys.path.insert(0, str(ROOT))
    from tools import fleet as cli

    f = tmp_path / "f.cfgbox"
    f.write_text(json.dumps({"format": "cfgbox-fleet/1", "files": {
        "store/ok.json": base64.b64encode(b"{}").decode(), "../evil": ""}}))
    (tmp_path / "root").mkdir()
    with pytest.raises(cli.CliError, match="corrupt"):
        cli.unpack(f, tmp_path / "root")
    assert not (tmp_path / "evil").exists() and list((tmp_path / "root").iterdir()) == []


def test_a_wrong_passphrase_is_a_clear_error(made):
    tmp_path, _ = made
    r = fleet(tmp_path, "list", pw="some other passphrase 77")
    assert r.returncode == 2 and "wrong passphrase" in r.stderr


def test_flash_commands_dry_run_and_their_errors(made):
    tmp_path, _ = made
    assert fleet(tmp_path, "enroll", "sensor-1").returncode == 0
    r = fleet(tmp_path, "flash-box")
    assert r.returncode == 2 and "PORT=" in r.stderr
    r = fleet(tmp_path, "flash-box", "--port", "/dev/no-such-port")
    assert r.returncode == 2 and "no such serial port" in r.stderr
    r = fleet(tmp_path, "flash-box", env={"PORT": "/dev/ttyUSB7", "DRY_RUN": "1"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and "-m mpremote connect /dev/ttyUSB7 " in lines[0]  # one session
    assert "remove it when done" in lines[1]
    steps = [x.strip() for x in lines[0].split(" connect /dev/ttyUSB7 ")[1].split(" + ")]
    assert steps[0].startswith("fs cp -r") and "build/configurator/configurator_fw :" in steps[0]
    run = [x for x in steps if x.startswith("run ")]
    store = [i for i, x in enumerate(steps) if x.endswith("/store :")]
    assert len(run) == 1 and store and steps.index(run[0]) < store[0]  # old store wiped first
    assert steps[-1] == "reset"
    r = fleet(tmp_path, "flash-client", "--port", "/dev/ttyUSB7", "--dry-run")
    assert r.returncode == 2 and "DEVICE=" in r.stderr
    r = fleet(tmp_path, "flash-client", "--port", "/dev/ttyUSB7", "--dry-run", "--device",
              "sensor-2")
    assert r.returncode == 2 and "no device sensor-2" in r.stderr
    r = fleet(tmp_path, "flash-client", "--port", "/dev/ttyUSB7", "--dry-run", "--device",
              "sensor-1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    steps = [x.strip() for x in lines[0].split(" connect /dev/ttyUSB7 ")[1].split(" + ")]
    assert "build/client/client_fw :" in steps[0] and steps[-1] == "reset"
    run = [x for x in steps if x.startswith("run ")]
    # the one-shot is kept for the printed commands (issue 17 item 6): mode 600, beside the
    # fleet file, and the last line says so
    one_shot = Path(run[0].split()[1])
    assert len(run) == 1 and one_shot.exists() and one_shot.stat().st_mode & 0o777 == 0o600
    assert one_shot.parent.parent == tmp_path / "dry-run"
    assert (tmp_path / "dry-run").stat().st_mode & 0o777 == 0o700
    assert "holds sensor-1's secrets (mode 600)" in lines[1] and str(one_shot) in lines[1]
    fleet(tmp_path, "revoke", "sensor-1")
    r = fleet(tmp_path, "flash-client", "--port", "/dev/ttyUSB7", "--dry-run", "--device",
              "sensor-1")
    assert r.returncode == 2 and "revoked" in r.stderr


def test_the_fleet_file_is_the_box_store_and_the_one_shot_bootstraps_a_client(made):
    """The fleet file copied to an emulated box (as flash-box does) boots sealed and unlocks
    with the passphrase; the one-shot script flash-client runs writes a device's bootstrap,
    and that device provisions. No secret reaches the dry-run's output."""
    tmp_path, port = made
    sys.path.insert(0, str(ROOT))
    from tools import fleet as cli

    assert fleet(tmp_path, "enroll", "sensor-1").returncode == 0
    r = fleet(tmp_path, "flash-client", "--port", "/dev/x", "--dry-run", "--device", "sensor-1")
    os.environ["CFGBOX_PASSPHRASE"] = PW
    try:
        boot = cli.Fleet(tmp_path / "f.cfgbox").bootstrap("sensor-1")
    finally:
        del os.environ["CFGBOX_PASSPHRASE"]
    assert boot["dk"] not in r.stdout and boot["totp"] not in r.stdout
    assert boot["psk"] not in r.stdout
    emu = tmp_path / "emu"
    box, adm, state = _boot_box_from_fleet_file(tmp_path, emu, port)
    world = upy.World(emu)
    try:
        assert state["sealed"] is True
        assert adm.login(PW, world.now())[0] == 200
        r = upy.device_run(cli._ONESHOT.format(dev="sensor-1", boot=boot), emu, "sensor-1")
        assert r.returncode == 0 and "bootstrap written for sensor-1" in r.stdout, r.stderr
        r = upy.device_run("from client_fw.device import Device\nfrom shared.board import Board\n"
                           "print('STATUS', Device(Board(), sleep_ms=lambda ms: None)"
                           ".check(force=True))", emu, "sensor-1")
        assert "STATUS ok" in r.stdout, r.stdout + r.stderr
    finally:
        box.terminate()
        box.wait(10)


def _boot_box_from_fleet_file(tmp_path, emu, port):
    """An emulated box given the fleet file's store (as flash-box does), powered on: (its
    process, an AdminClient, the session state it first answered)."""
    import time

    from tools import fleet as cli

    upy.provision_board(emu, "box", "configurator", frozen=True)
    cli.unpack(tmp_path / "f.cfgbox", tmp_path / "store-copy")
    upy.DeviceFS(emu, "box").put_tree(tmp_path / "store-copy")
    box = subprocess.Popen(upy.board_cmd("emu_boot.run_main()", upy.ESP32_HEAP, True),
                           cwd=upy.device_dir(emu, "box"), env=upy.board_env(emu, "box", True),
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    adm = AdminClient(port)
    end = time.monotonic() + upy.HANG_S  # a hang guard only
    while time.monotonic() < end:
        try:
            return box, adm, adm.get("session")[1]
        except OSError:
            time.sleep(0.05)
    box.terminate()
    raise AssertionError("the box did not answer")


def test_pull_takes_the_box_store_back_into_the_fleet_file(made, monkeypatch):
    """A device enrolled and a config set on the admin page reach the fleet file by `pull`
    (mpremote's copy of the box's store, here read from the emulated flash): it must open with
    the passphrase and verify record by record, the old file is kept as .bak, and a wrong
    passphrase, a tampered record or another box's store change nothing."""
    tmp_path, port = made
    sys.path.insert(0, str(ROOT))
    from tools import fleet as cli

    path = tmp_path / "f.cfgbox"
    assert fleet(tmp_path, "enroll", "sensor-1").returncode == 0
    r = fleet(tmp_path, "pull", "--port", "/dev/ttyUSB7", "--dry-run")
    assert r.returncode == 0, r.stderr
    steps = r.stdout.strip().split(" connect /dev/ttyUSB7 ")[1].split(" + ")
    assert steps[0].startswith("fs cp -r :store ") and steps[-1] == "reset", steps
    assert fleet(tmp_path, "pull").returncode == 2  # no port
    before = path.read_bytes()
    emu = tmp_path / "emu"
    box, adm, _ = _boot_box_from_fleet_file(tmp_path, emu, port)
    try:
        assert adm.login(PW, upy.World(emu).now())[0] == 200
        assert adm.post("enroll", {"dev": "late-1"})[0] == 200
        assert adm.post("overrides", {"dev": "late-1", "config": {"name": "L1"}})[0] == 200
    finally:
        box.terminate()
        box.wait(10)
    pulled = tmp_path / "pulled"
    upy.DeviceFS(emu, "box").get_tree("store", pulled)
    monkeypatch.setenv("CFGBOX_PASSPHRASE", "not the passphrase 1234")
    with pytest.raises(cli.CliError, match="wrong passphrase"):
        cli.adopt(pulled, path)
    monkeypatch.setenv("CFGBOX_PASSPHRASE", PW)
    other = tmp_path / "other.cfgbox"
    assert fleet(tmp_path, "--file", str(other), "init", "--box", "box-2", "--ssid",
                 "n2").returncode == 0
    with pytest.raises(cli.CliError, match="the board holds box box-cli.*box-2"):
        cli.adopt(pulled, other)
    bucket = pulled / "store" / "d" / "00.bin"
    good = bucket.read_bytes()
    assert good[0] == 1  # the first device's record: "enrolled"
    bucket.write_bytes(b"\x03" + good[1:])  # made "revoked" without the vault's key
    with pytest.raises(cli.CliError, match="fail their checks"):
        cli.adopt(pulled, path)
    assert path.read_bytes() == before and not Path(str(path) + ".bak").exists()
    bucket.write_bytes(good)
    cli.adopt(pulled, path)
    assert Path(str(path) + ".bak").read_bytes() == before
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(Path(str(path) + ".bak").stat().st_mode & 0o777) == "0o600"
    r = fleet(tmp_path, "list")
    assert "late-1" in r.stdout and "sensor-1" in r.stdout and "2 devices" in r.stdout, r.stdout
    r = fleet(tmp_path, "flash-client", "--port", "/dev/x", "--dry-run", "--device", "late-1")
    assert r.returncode == 0, r.stderr


pytestmark = pytest.mark.skipif(not upy.MICROPYTHON.exists(),
                                reason="MicroPython not built: run `make test`")


def test_make_targets_pass_port_device_and_dry_run_through(made):
    tmp_path, _ = made
    assert fleet(tmp_path, "enroll", "sensor-1").returncode == 0
    env = dict(os.environ, CFGBOX_PASSPHRASE=PW)
    base = ["make", "-s", "--no-print-directory", "FLEET=%s" % (tmp_path / "f.cfgbox"),
            "DRY_RUN=1", "PORT=/dev/ttyACM3"]
    r = subprocess.run(base + ["flash-client", "DEVICE=sensor-1"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "connect /dev/ttyACM3 fs cp -r" in r.stdout and " + run " in r.stdout
    assert "holds sensor-1's secrets (mode 600)" in r.stdout
    r = subprocess.run(base + ["flash-box"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    printed = [x for x in r.stdout.splitlines() if "mpremote" in x][-1]
    assert printed.strip().endswith("reset"), r.stdout
    # every file the printed commands name is still there: they can be run as printed
    named = [w for w in printed.split() if w.startswith(str(tmp_path))]
    assert named and all(Path(w).exists() for w in named), named
    assert "remove it when done" in r.stdout
    r = subprocess.run(base + ["pull-box"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "connect /dev/ttyACM3 fs cp -r :store " in r.stdout, r.stderr
    r = subprocess.run(["make", "-s", "FLEET=%s" % (tmp_path / "f.cfgbox"), "flash-box"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "PORT=" in r.stderr


def test_broker_makes_the_brokers_material_and_each_devices_credential(made):
    from cryptography import x509

    from mqttworld import BROKER_IP, Mosquitto, connack
    from mqttworld import free_port as broker_port
    from tools.broker import Broker
    from tools.fleet import Fleet

    tmp_path, _ = made
    assert fleet(tmp_path, "enroll", "s1", "s2", "s3").returncode == 0  # several at once
    assert fleet(tmp_path, "revoke", "s3").returncode == 0
    bdir = tmp_path / "broker"
    r = fleet(tmp_path, "broker", "--dir", str(bdir))
    assert r.returncode == 2 and "--host" in r.stderr and not bdir.exists()
    port = broker_port()
    r = fleet(tmp_path, "broker", "--dir", str(bdir), "--host", "mqtt.site.example",
              "--bind", BROKER_IP, "--mqtt-port", str(port))
    assert r.returncode == 0, r.stderr
    assert "2 device credentials (2 new)" in r.stdout
    assert oct(bdir.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in bdir.iterdir())
    os.environ["CFGBOX_PASSPHRASE"] = PW
    try:
        opened = Fleet(tmp_path / "f.cfgbox")  # kept: its temporary copy lives as long
        store = opened.store
        creds = {d: store.overrides(d)["mqtt"] for d in ("s1", "s2")}
        defaults = store.defaults()
        assert "mqtt" not in store.overrides("s3")
    finally:
        del os.environ["CFGBOX_PASSPHRASE"]  # revoked: no credential made for it
    assert defaults["mqtt"] == {"host": "mqtt.site.example", "port": port, "tls": True,
                                "ca": (bdir / "ca.pem").read_text()}
    for dev, m in creds.items():
        assert m["user"] == dev and len(m["password"]) >= 24
        assert m["password"] not in r.stdout + r.stderr
        assert m["password"] not in (bdir / "passwd").read_text()  # hashed
    users = [line.split(":")[0] for line in (bdir / "passwd").read_text().splitlines()]
    assert sorted(users) == ["cfgbox-monitor", "s1", "s2"]
    assert "pattern readwrite devices/%u/#" in (bdir / "acl").read_text()
    # the broker's certificate: for that name, signed by the CA, valid from 2000
    ca = x509.load_pem_x509_certificate((bdir / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificates((bdir / "server.pem").read_bytes())[0]
    server.verify_directly_issued_by(ca)
    assert server.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "mqtt.site.example"]
    assert server.not_valid_before_utc.year == 2000
    # the real broker takes each device's credential and nothing else
    broker = Broker(bdir)
    mosq = Mosquitto(broker).start()
    try:
        assert connack(broker, "s1", creds["s1"]["password"]) == 0
        assert connack(broker, "s1", creds["s2"]["password"]) == 5
        assert connack(broker, "s3", creds["s1"]["password"]) == 5
        r = fleet(tmp_path, "broker", "--dir", str(bdir), "--rotate")
        assert r.returncode == 0 and "2 device credentials (2 new)" in r.stdout, r.stderr
        mosq.restart()
        assert connack(broker, "s1", creds["s1"]["password"]) == 5  # the old one
    finally:
        mosq.stop()


@pytest.mark.parametrize("args, message", [
    (("--port", "99999"), "--port 99999"), (("--port", "-5"), "--port -5"),
    (("--port", "0"), "--port 0"), (("--box", ""), "--box ''"),
    (("--box", "my box/1"), "--box 'my box/1'"), (("--max-clients", "11"), "--max-clients 11"),
])
def test_init_refuses_a_port_box_id_or_station_count_out_of_range(tmp_path, args, message):
    """Each refused before a passphrase is asked for or a file written, with what is wrong."""
    opts = {"--box": "box-ok", "--ssid": "net", "--port": "8080"}
    opts.update(zip(args[::2], args[1::2], strict=True))
    r = fleet(tmp_path, "init", *[x for kv in opts.items() for x in kv])
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "f.cfgbox").exists()


def test_the_cli_runs_from_any_directory_with_the_venvs_python(made):
    """`make venv` puts the checkout on the venv's path, so `python -m tools.fleet` does not
    depend on the working directory (it failed with ModuleNotFoundError elsewhere)."""
    tmp_path, _ = made
    venv_python = ROOT / ".venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.skip("no .venv: make test builds it; this test is about that venv")
    r = subprocess.run([str(venv_python), "-m", "tools.fleet", "--file",
                        str(tmp_path / "f.cfgbox"), "list"], cwd=tmp_path,
                       env=dict(os.environ, CFGBOX_PASSPHRASE=PW), capture_output=True,
                       text=True)
    assert r.returncode == 0 and "box box-cli" in r.stdout, r.stderr


def test_show_prints_the_merged_config_a_device_receives_with_secrets_masked(made, tmp_path):
    """Defaults and a device's overrides merged, as the device gets them; its version and
    size against the cap; secrets masked unless --reveal (issue 17 item 7)."""
    tmp, _ = made
    assert fleet(tmp, "enroll", "sensor-1").returncode == 0
    (tmp / "d.json").write_text(json.dumps({
        "mqtt": {"host": "m.example.net", "password": "mqtt-secret-1"}, "ntp": "pool.ntp.org"}))
    assert fleet(tmp, "set-config", str(tmp / "d.json")).returncode == 0
    (tmp / "o.json").write_text(json.dumps({"mqtt": {"user": "s1"}, "name": "first"}))
    assert fleet(tmp, "set-config", str(tmp / "o.json"), "--device", "sensor-1").returncode == 0
    r = fleet(tmp, "show", "sensor-1")
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition("\n")
    assert "sensor-1 (enrolled) receives version" in head and "(cap 16384)" in head, head
    shown = json.loads(body)
    assert shown == {"mqtt": {"host": "m.example.net", "password": "********", "user": "s1"},
                     "name": "first", "ntp": "pool.ntp.org"}
    assert "mqtt-secret-1" not in r.stdout
    r = fleet(tmp, "show", "sensor-1", "--reveal")
    assert json.loads(r.stdout.partition("\n")[2])["mqtt"]["password"] == "mqtt-secret-1"
    r = fleet(tmp, "show", "sensor-9")
    assert r.returncode == 2 and "no device sensor-9" in r.stderr


def test_diff_says_how_a_box_store_and_the_fleet_file_drifted_apart(made, tmp_path):
    """issue 17 item 7: the box's store (here a copy as `fleet pull` takes it) against the
    fleet file: a device enrolled on the page, one revoked there, new defaults, other
    overrides; and "agree" when they do."""
    import shutil

    tmp, _ = made
    for dev in ("sensor-1", "sensor-2"):
        assert fleet(tmp, "enroll", dev).returncode == 0
    box = tmp / "box"
    box.mkdir()
    shutil.copy(tmp / "f.cfgbox", box / "f.cfgbox")
    sys.path.insert(0, str(ROOT))
    from tools import fleet as cli

    def unpacked(src, dest):
        cli.unpack(src, dest)
        return dest

    same = unpacked(tmp / "f.cfgbox", tmp / "same")
    r = fleet(tmp, "diff", "--from", str(same))
    assert r.returncode == 0 and "agree" in r.stdout, r.stdout + r.stderr
    # what the box did meanwhile (on its admin page), played on a copy of the store
    (tmp / "d.json").write_text(json.dumps({"ntp": "pool.ntp.org"}))
    (tmp / "o.json").write_text(json.dumps({"name": "two"}))
    for args in (("enroll", "sensor-3"), ("revoke", "sensor-1"),
                 ("set-config", str(tmp / "d.json")),
                 ("set-config", str(tmp / "o.json"), "--device", "sensor-2")):
        r = subprocess.run([sys.executable, "-m", "tools.fleet", "--file", str(box / "f.cfgbox"),
                            *args], cwd=ROOT, env=dict(os.environ, CFGBOX_PASSPHRASE=PW),
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    pulled = unpacked(box / "f.cfgbox", tmp / "pulled")
    r = fleet(tmp, "diff", "--from", str(pulled))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "sensor-3: only on the box (enrolled)" in lines
    assert "sensor-1: revoked on the box" in lines
    assert "sensor-2: overrides differ" in lines
    assert any(x.startswith("defaults: file at revision") for x in lines), lines
    assert lines[-1].startswith("4 differences")


def test_pull_refuses_an_older_store_and_carries_the_files_revocations(made, monkeypatch, capsys):
    """`pull` (adopt) of a box's store whose revision is below the fleet file's is refused (a
    box put back from an older backup, or changes not flashed yet); a newer one is taken, and
    a device the file revoked since stays revoked in it (the box's own revocations come with
    its store)."""
    import shutil

    tmp_path, _ = made
    sys.path.insert(0, str(ROOT))
    from tools import fleet as cli

    monkeypatch.setenv("CFGBOX_PASSPHRASE", PW)
    path = tmp_path / "f.cfgbox"
    for dev in ("sensor-1", "sensor-2"):
        assert fleet(tmp_path, "enroll", dev).returncode == 0
    box = tmp_path / "box"
    cli.unpack(path, box)  # the box's store, as flashed
    assert fleet(tmp_path, "revoke", "sensor-2").returncode == 0  # in the file only
    pulled = tmp_path / "pulled"
    shutil.copytree(box, pulled)
    with pytest.raises(cli.CliError, match="older than"):
        cli.adopt(pulled, path)
    on_box = cli.open_store(cli.HostBoard(box), "box")  # the admin page's changes on the box
    on_box.enroll("late-1")
    on_box.set_defaults({"ntp": "pool.example"})
    shutil.rmtree(pulled)
    shutil.copytree(box, pulled)
    cli.adopt(pulled, path)
    assert "kept revoked: sensor-2" in capsys.readouterr().out
    f = cli.Fleet(path)
    states = {dev: rec["state"] for dev, rec in f.store.devices(False)}
    assert states == {"sensor-1": "enrolled", "sensor-2": "revoked", "late-1": "enrolled"}
    assert f.store.defaults() == {"ntp": "pool.example"}
