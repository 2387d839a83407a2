# NVS as the port has it (ports/esp32/esp32_nvs.c over ESP-IDF's nvs_flash): the emulated board
# keeps its NVS in the real partition format, so an image made by Espressif's
# esp-idf-nvs-partition-gen is what it boots from; every set is durable at once; a power cut
# between two sets leaves the first; the bootstrap is one blob, whole or absent.
import json
import shutil
import subprocess
import sys

import upy_harness as upy

from fleet import Fleet
from tools import nvsimage

BOOT = {"dev": "sensor-01", "dk": "a1" * 32, "totp": "b2" * 20, "ssid": "plant1",
        "psk": "fleet-ap-key-1", "box": "cfgbox-plant1"}
NEW = dict(BOOT, dk="c3" * 32, totp="d4" * 20, psk="fleet-ap-key-2")


def _run(tmp_path, script, dev="d1", env=None):
    """``script`` on board ``dev`` of this test's directory (one board unless named)."""
    return upy.device_run(script, tmp_path, dev, env=env)


def _ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _nvs(tmp_path, dev="d1"):
    return nvsimage.read((upy.device_dir(tmp_path, dev) / "nvs.bin").read_bytes())


def test_every_set_is_durable_without_commit_and_handles_share_one_store(tmp_path):
    """IDF writes through: nothing waits for commit(); two handles of one namespace are one
    store (the old emulation kept a copy per handle and wrote only at commit)."""
    _ok(_run(tmp_path, "import esp32\na = esp32.NVS('app')\nb = esp32.NVS('app')\n"
             "a.set_blob('x', b'from a')\nb.set_i32('n', 7)\nb.commit()\n"
             "print(a.get_i32('n'))"))
    # neither commit mattered: the next run (a reset) sees both writes
    out = _ok(_run(tmp_path, "import esp32\nn = esp32.NVS('app')\nbuf = bytearray(16)\n"
                   "print(bytes(buf[:n.get_blob('x', buf)]), n.get_i32('n'))"))
    assert "b'from a' 7" in out
    assert _nvs(tmp_path)[("app", "x")] == b"from a"  # in the real format, readable by the host


def test_keys_over_15_characters_and_short_buffers_raise_the_ports_errors(tmp_path):
    out = _ok(_run(tmp_path, """
import esp32
n = esp32.NVS('app')
for f in (lambda: n.set_i32('k' * 16, 1), lambda: n.get_i32('k' * 16),
          lambda: n.set_blob('k' * 16, b'x')):
    try:
        f()
        print('ACCEPTED')
    except OSError as e:
        print('ERR', e.args[0], e.args[1])
n.set_i32('k' * 15, 1)
n.set_blob('b', b'12345')
try:
    n.get_blob('b', bytearray(4))
except OSError as e:
    print('SHORT', e.args[0], e.args[1])
print('LEN', n.get_blob('b', bytearray(5)))
try:
    n.get_i32('b')
except OSError as e:
    print('TYPE', e.args[0])
"""))
    assert out.count("ERR -4361 ESP_ERR_NVS_KEY_TOO_LONG") == 3 and "ACCEPTED" not in out
    assert "SHORT -4364 ESP_ERR_NVS_INVALID_LENGTH" in out  # -0x110C, not -0x1107
    assert "LEN 5" in out and "TYPE -4354" in out  # a blob is not an i32: not found


def test_many_writes_wrap_through_the_pages_and_keep_every_live_key(tmp_path):
    """Past the partition's 6 pages the store collects its garbage: 600 updates of one key
    and the other keys all survive."""
    _ok(_run(tmp_path, "import esp32\nn = esp32.NVS('app')\nn.set_blob('keep', b'k' * 100)\n"
             "for i in range(600):\n    n.set_i32('ctr', i)\n"))
    got = _nvs(tmp_path)
    assert got[("app", "ctr")] == 599 and got[("app", "keep")] == b"k" * 100


def _boot_script(boot):
    return ("from client_fw import bootstrap\nfrom shared.board import Board\nimport json\n"
            "bootstrap.write(Board(), json.loads(%r))\n" % json.dumps(boot))


READ = ("from client_fw import bootstrap\nfrom shared.board import Board\n"
        "try:\n    b = bootstrap.read(Board())\n"
        "    print('BOOT', b['dk'].hex(), b['totp'].hex(), b['psk'], b['ctr'], b['vmax'])\n"
        "except bootstrap.Missing:\n    print('MISSING')\n")


def test_a_power_cut_at_any_point_of_a_recommissioning_leaves_old_or_new_never_a_mix(tmp_path):
    """A board commissioned, used (a TOTP step and a version recorded), then commissioned
    again with new secrets, the power cut before each of the writes in turn: the bootstrap
    read after the cut is wholly the old one (with its counters) or wholly the new one (with
    none of the old counters). The bootstrap of eight keys this replaces could be cut between
    DK and T."""
    record = ("from client_fw import bootstrap\nfrom shared.board import Board\n"
              "b = bootstrap.read(Board())\nbootstrap.record(Board(), b, ctr=59840640)\n"
              "bootstrap.record(Board(), b, vmax=12)\n")
    old = "BOOT %s %s %s 59840640 12" % (BOOT["dk"], BOOT["totp"], BOOT["psk"])
    new = "BOOT %s %s %s -1 0" % (NEW["dk"], NEW["totp"], NEW["psk"])
    seen = set()
    for cut in range(1, 4):
        dev = "cut%d" % cut
        _ok(_run(tmp_path, _boot_script(BOOT) + record, dev))
        r = _run(tmp_path, _boot_script(NEW) + "print('DONE')", dev,
                 env={"EMU_NVS_CUT_AT": str(cut)})
        assert r.returncode in (0, upy.CUT_EXIT), r.stdout + r.stderr
        line = [x for x in _ok(_run(tmp_path, READ, dev)).splitlines() if x.startswith(
            ("BOOT", "MISSING"))][0]
        assert line in (old, new), (cut, line)
        seen.add(line == new)
    assert seen == {False, True}  # the cuts fell both before and after the one write


def test_a_client_boots_and_provisions_from_an_image_made_by_the_nvs_partition_generator(
        tmp_path):
    """`fleet nvs-image`'s way: the bootstrap as an NVS partition made by
    esp-idf-nvs-partition-gen, written where esptool puts it (the partition at 0x9000 is the
    board's nvs.bin here); the board's firmware reads it and provisions with it."""
    f = Fleet(tmp_path)
    f.set_defaults({"ntp": "pool.ntp.org"})
    try:
        out = f.admin("enroll('sensor-01')")
        boot = json.loads(out.splitlines()[0])
        f.boots["sensor-01"] = boot
        upy.provision_board(tmp_path, "sensor-01", "client")
        img = nvsimage.make(boot, tmp_path / "sensor-01-nvs.bin")
        assert len(img.read_bytes()) == nvsimage.NVS_SIZE
        shutil.copyfile(img, upy.device_dir(tmp_path, "sensor-01") / "nvs.bin")
        f.start_box()
        assert f.check("sensor-01") == ("ok", {"ntp": "pool.ntp.org"})
        # what the board wrote since (its counters, its storage salt) is still in the format
        got = _nvs(tmp_path, "sensor-01")
        assert ("cfgbox", "run") in got and len(got[("cfgbox", "salt")]) == 16
        assert json.loads(got[("cfgbox", "boot")]) == {k: boot[k] for k in json.loads(
            got[("cfgbox", "boot")])}
    finally:
        f.stop_box()


def test_an_encrypted_image_hides_the_bootstrap_and_decrypts_with_the_tools_key(tmp_path):
    """NVS encryption (for boards with flash encryption): nothing of the bootstrap reads from
    the image without the key; the generator's own decrypt gives an image that boots."""
    img = nvsimage.make(BOOT, tmp_path / "enc.bin", keyfile=tmp_path / "keys.bin")
    raw = img.read_bytes()
    assert nvsimage.read(raw) == {}
    for secret in (BOOT["dk"], BOOT["psk"], BOOT["totp"]):
        assert secret.encode() not in raw and bytes.fromhex(BOOT["dk"]) not in raw
    r = subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "decrypt",
                        str(img), str(tmp_path / "keys.bin"), "plain.bin"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    plain = next(tmp_path.rglob("plain.bin"))
    upy.provision_board(tmp_path, "d1", "client")
    shutil.copyfile(plain, upy.device_dir(tmp_path, "d1") / "nvs.bin")
    assert "BOOT %s %s %s -1 0" % (BOOT["dk"], BOOT["totp"], BOOT["psk"]) in _ok(
        _run(tmp_path, READ))


def test_fleet_nvs_image_writes_one_image_per_device_of_a_batch(tmp_path):
    fleet_file = tmp_path / "fleet.cfgbox"
    env = {"CFGBOX_PASSPHRASE": "correct horse battery staple 42"}

    def cli(*args):
        import os

        return subprocess.run([sys.executable, "-m", "tools.fleet", "--file", str(fleet_file),
                               *args], cwd=upy.REPO, capture_output=True, text=True,
                              env=dict(os.environ, **env), timeout=300)

    r = cli("init", "--box", "cfgbox-t", "--ssid", "plant1", "--iterations", "1000")
    assert r.returncode == 0, r.stderr
    assert cli("enroll", "s-1", "s-2", "s-3").returncode == 0
    (tmp_path / "batch.csv").write_text("# id\ns-2\ns-3\n")
    r = cli("nvs-image", "s-1", "--batch", str(tmp_path / "batch.csv"), "--out",
            str(tmp_path / "imgs"))
    assert r.returncode == 0, r.stderr
    for dev in ("s-1", "s-2", "s-3"):
        blob = nvsimage.read((tmp_path / "imgs" / ("%s-nvs.bin" % dev)).read_bytes())
        assert json.loads(blob[("cfgbox", "boot")])["dev"] == dev
    r = cli("nvs-image", "nobody", "--out", str(tmp_path / "imgs"))
    assert r.returncode == 2 and "no device nobody" in r.stderr
