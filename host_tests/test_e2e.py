# Provisioning end to end: the box and devices as separate MicroPython processes running the .mpy
# bundles on the emulated AP, within the ESP32's heap.
import threading

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
    assert d["st"]["fw"] == "1.1.0" and d["st"]["ver"] == d["ver"] and d["st"]["heap"] > 0
    # the stored file holds no plaintext
    raw = fleet.stored("sensor-1")
    assert b"s3cret-wifi" not in raw and b"mqtt-pass" not in raw


def test_change_reaches_device_and_unchanged_is_not_downloaded(fleet):
    fleet.enroll("sensor-2")
    fleet.start_box()
    assert fleet.check("sensor-2")[0] == "ok"
    before = fleet.stored("sensor-2")
    # a second check within the same 30 s step uses the next step (each is accepted once)
    assert fleet.check("sensor-2") == ("unchanged", CFG)
    assert fleet.stored("sensor-2") == before  # not rewritten
    fleet.set_defaults(dict(CFG, ntp="ntp.example.org"))
    # a third check in the same step would need a step beyond the box's window: it waits
    assert fleet.check("sensor-2") == ("box busy", CFG)
    fleet.world.advance(30)
    status, cfg = fleet.check("sensor-2")
    assert status == "ok" and cfg["ntp"] == "ntp.example.org"


def test_wrong_device_key_is_refused(fleet):
    fleet.enroll("sensor-3")
    fleet.set_boot("sensor-3", dk="00" * 32)
    fleet.start_box()
    # with the wrong key the device cannot even verify the box: it refuses before sending a proof
    assert fleet.check("sensor-3") == ("box not authentic", None)


def test_wrong_expired_and_replayed_totp(fleet):
    fleet.enroll("sensor-4")
    fleet.start_box()
    now = fleet.world.now()
    assert fleet.check("sensor-4", now=now - 120)[0] == "unauthorized"  # expired code
    assert fleet.check("sensor-4", now=now + 120)[0] == "unauthorized"  # future code
    fleet.set_boot("sensor-4", totp="00" * 20)
    # with the wrong T the device cannot even verify the box (K needs both): nothing is sent
    assert fleet.check("sensor-4")[0] == "box not authentic"


def test_evil_twin_is_refused_and_old_config_kept(fleet, tmp_path):
    fleet.enroll("sensor-5")
    fleet.start_box()
    assert fleet.check("sensor-5")[0] == "ok"
    fleet.stop_box()
    # a twin: another board with the same box id, SSID and passphrase, its own master key
    twin = Fleet(tmp_path, box="twin", port=fleet.port)
    twin.boxrun("from configurator_fw import admin\nadmin.enroll('sensor-5')\n"
                "admin.set_defaults('{\"wifi\": [{\"ssid\": \"attacker\"}]}')")
    twin.start_box()
    try:
        assert fleet.check("sensor-5") == ("box not authentic", CFG)
    finally:
        twin.stop_box()


def test_tampered_and_copied_config_files(fleet):
    fleet.enroll("sensor-6")
    fleet.enroll("sensor-7")
    fleet.start_box()
    assert fleet.check("sensor-6")[0] == "ok"
    fs = fleet.fs("sensor-6")
    good = fs.read("config.bin")
    bad = bytearray(good)
    bad[40] ^= 1
    fs.write("config.bin", bytes(bad))
    out = fleet.devrun("sensor-6", "from client_fw.device import Device\n"
                       "from shared.board import Board\nprint(Device(Board()).load_config())")
    assert out.strip() == "None"  # rejected, not garbage
    fs.write("config.bin", good[:-16])  # truncated by one block, as a torn copy would be
    out = fleet.devrun("sensor-6", "from client_fw.device import Device\n"
                       "from shared.board import Board\nprint(Device(Board()).load_config())")
    assert out.strip() == "None"
    fleet.stop_box()
    fs.write("config.bin", good)
    # copied to another device (other unique_id and key): it does not open there
    fleet.fs("sensor-7").write("config.bin", good)
    out = fleet.devrun("sensor-7", "from client_fw.device import Device\n"
                       "from shared.board import Board\nprint(Device(Board()).load_config())")
    assert out.strip() == "None"


def test_lockout_after_repeated_failures_and_recovery(fleet):
    fleet.enroll("sensor-8")
    fleet.start_box()
    now = fleet.world.now()
    for _ in range(5):
        assert fleet.check("sensor-8", now=now - 600)[0] == "unauthorized"
    assert fleet.check("sensor-8")[0] == "locked out"  # even the right code is not evaluated
    # the lock holds for 30 s, then the device gets through
    fleet.world.advance(20)
    assert fleet.check("sensor-8")[0] == "locked out"
    fleet.world.advance(11)
    assert fleet.check("sensor-8")[0] == "ok"


def test_16k_payload_provisions_and_oversize_is_refused(fleet):
    fleet.enroll("sensor-9")
    def pem(kind, lines):
        return "-----BEGIN %s-----\n%s-----END %s-----\n" % (kind, ("A" * 64 + "\n") * lines,
                                                             kind)

    big = {"mqtt": {"ca": pem("CERTIFICATE", 90), "cert": pem("CERTIFICATE", 70),
                    "key": pem("PRIVATE KEY", 70)}}
    n = len(__import__("json").dumps(dict(CFG, mqtt=dict(CFG["mqtt"], **big["mqtt"]))))
    assert 16384 > n > 15000
    fleet.set_overrides("sensor-9", big)
    fleet.start_box()
    status, cfg = fleet.check("sensor-9")
    assert status == "ok" and cfg["mqtt"]["ca"] == big["mqtt"]["ca"]
    assert cfg["mqtt"]["key"] == big["mqtt"]["key"] and cfg["mqtt"]["user"] == "fleet"
    with pytest.raises(AssertionError, match="cap is 16384"):
        fleet.set_overrides("sensor-9", {"mqtt": {"ca": pem("CERTIFICATE", 300)}})
    # defaults that fit alone but not merged with sensor-9's large overrides: refused whole
    with pytest.raises(AssertionError, match=r"config of sensor-9 would be \d+ bytes; the cap"):
        fleet.set_defaults(dict(CFG, api_keys={"k%d" % i: "v" * 40 for i in range(30)}))
    with pytest.raises(AssertionError, match=r"config of sensor-9: mqtt.port: expected int"):
        fleet.set_overrides("sensor-9", {"mqtt": {"port": "8883"}})
    assert fleet.check("sensor-9")[0] == "unchanged"  # the refused change changed nothing


def test_a_station_past_the_box_limit_is_refused_until_one_leaves(fleet):
    """The box admits 8 stations at once (its default, stock firmware's DHCP pool): a ninth
    is refused (AP full) until one of them leaves."""
    fleet.enroll("sensor-10")
    fleet.start_box()
    holders = []
    import subprocess

    import upy_harness as upy
    hold = ("from shared.board import Board\nimport sys, time\nsta = Board().wlan('sta')\n"
            "sta.active(True)\nsta.connect('cfgbox-test', 'fleet passphrase 1')\n"
            "while not sta.isconnected():\n    time.sleep_ms(100)\n"
            "print(sta.isconnected())\nsys.stdin.read(1)\nsta.disconnect()\n")
    try:
        for i in range(8):
            name = f"holder-{i}"
            upy.provision_board(fleet.dir, name, "client")
            p = subprocess.Popen(upy.board_cmd(hold, upy.ESP32_HEAP), text=True,
                                 cwd=upy.device_dir(fleet.dir, name),
                                 env=upy.board_env(fleet.dir, name, cold=True),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            holders.append(p)
            # a hang guard only: a holder that never joins is killed after 120 s
            timer = threading.Timer(120, p.kill)
            timer.start()
            line = p.stdout.readline().strip()
            timer.cancel()
            assert line == "True", name
        assert fleet.check("sensor-10")[0] == "AP full"
        holders[0].communicate("x", timeout=10)  # one leaves
        assert fleet.check("sensor-10")[0] == "ok"
    finally:
        for p in holders:
            if p.poll() is None:
                p.communicate("x", timeout=10)


def test_two_hundred_devices_fit_the_box_heap(fleet):
    fleet.boxrun("from configurator_fw.store import Store\n"
                 "from configurator_fw.vault import Vault\nfrom shared.board import Board\n"
                 "import gc\nb = Board()\n"
                 "s = Store(b, Vault.auto(b))\n"
                 "for i in range(199):\n    s.enroll('filler-%03d' % i)\n    gc.collect()\n"
                 "s.set_overrides('filler-000', {'name': 'first'})")
    fleet.enroll("sensor-200")
    fleet.set_overrides("sensor-200", {"name": "last"})
    fleet.set_defaults(CFG)  # checks the change against every device's overrides
    fleet.start_box()
    assert fleet.check("sensor-200") == ("ok", dict(CFG, name="last"))
    listed = fleet.devices()  # the operator's listing of all 200, within the same heap
    assert len(listed) == 200 and listed["sensor-200"]["state"] == "provisioned"
    assert listed["filler-000"]["ver"] == listed["sensor-200"]["ver"]  # the defaults moved both


def test_release_gives_the_provisioning_ram_back(fleet):
    fleet.enroll("sensor-11")
    fleet.start_box()
    out = fleet.devrun("sensor-11", "\n".join([
        "import gc, sys",
        "import network, machine, esp32  # built into a board's firmware: not ours to count",
        "gc.collect(); before = gc.mem_free()",
        "from client_fw.device import Device, release",
        "from shared.board import Board",
        "d = Device(Board(), sleep_ms=lambda ms: None)",
        "status = d.check(force=True)",
        "config = d.load_config()",
        "gc.collect(); loaded = gc.mem_free()",
        "release()",
        "del d, Device, Board, release",
        "gc.collect(); after = gc.mem_free()",
        "left = [m for m in sys.modules if m.split('.')[0] in ('client_fw', 'shared')]",
        "print(status, before, loaded, after, len(left), config['ntp'])"]))
    status, before, loaded, after, left, ntp = out.split()
    before, loaded, after = int(before), int(loaded), int(after)
    assert (status, left, ntp) == ("ok", "0", CFG["ntp"])
    used = before - loaded
    # what stays is the config dict and interned names, which MicroPython never frees
    assert after - loaded >= 0.6 * used, (before, loaded, after)


def test_a_box_restored_from_an_older_backup_cannot_roll_a_device_back(fleet):
    """The box's flash is put back as it was a version ago (a restored backup, or an attacker
    with write access copying old files back: every MAC in them is valid). The box sees it
    (NVS) and serves nobody until the operator accepts the restore; then the device refuses the
    older version and keeps its config, and the operator's admin.move_on() lets the fleet go
    on, at a version above the one the device holds."""
    import shutil

    import upy_harness as upy

    fleet.enroll("sensor-r")
    fleet.start_box()
    assert fleet.check("sensor-r")[0] == "ok"
    fleet.stop_box()
    image = upy.flash_image(fleet.dir, fleet.box)
    shutil.copyfile(image, str(image) + ".backup")
    fleet.set_defaults(dict(CFG, ntp="new.example.org"))
    fleet.start_box()
    fleet.world.advance(30)
    status, cfg = fleet.check("sensor-r")
    assert status == "ok" and cfg["ntp"] == "new.example.org"
    fleet.stop_box()
    shutil.copyfile(str(image) + ".backup", image)  # the older store, byte for byte
    fleet.start_box()
    fleet.world.advance(30)
    # the box's NVS (another partition) remembers the store revision it wrote: it serves no
    # device from a store put back until the operator says the restore was meant
    status, cfg = fleet.check("sensor-r")
    assert status != "ok" and cfg == dict(CFG, ntp="new.example.org")
    assert "its flash was put back" in fleet.box_log_text()
    assert "restore accepted" in fleet.boxrun(
        "from configurator_fw import admin\nadmin.accept_restore()")
    fleet.world.advance(30)
    assert fleet.check("sensor-r") == ("older config refused", dict(CFG, ntp="new.example.org"))
    assert "holds version" in fleet.box_log_text()
    fleet.boxrun("from configurator_fw import admin\nadmin.move_on()")
    fleet.world.advance(30)
    status, cfg = fleet.check("sensor-r")
    assert (status, cfg) == ("ok", CFG)  # the restored config, at a newer version
    d = fleet.devices()["sensor-r"]
    assert d["ack"] == d["ver"] > 2
