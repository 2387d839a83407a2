# The real mpremote against emulated boards on a pseudo-terminal (host_tests/serialboard.py):
# the raw REPL, raw paste and soft reset as pyexec.c has them, and the README's own commands,
# `make flash-client`, `make flash-box` and `make pull-box`, run unchanged.
import os
import subprocess
import sys

import pytest
import upy_harness as upy
from serialboard import SerialBoard

from tools import nvsimage

PW = "serial test passphrase, long 42"


def mpremote(port, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def board(tmp_path):
    b = SerialBoard(tmp_path, "b1")
    yield b
    b.stop()


def test_mpremote_execs_copies_and_lists_on_a_new_board(board, tmp_path):
    """A board fresh from the factory (MicroPython just written: its first boot made the
    filesystem and boot.py, as inisetup.py does); mpremote enters the raw REPL with a soft
    reset, runs code through raw paste, copies a file both ways and lists it."""
    r = mpremote(board.path, "exec", "import sys; print('ON', sys.implementation.name, 6 * 7)")
    assert r.returncode == 0 and "ON micropython 42" in r.stdout, r.stdout + r.stderr
    src = tmp_path / "data.bin"
    src.write_bytes(bytes(range(256)) * 12)  # more than a raw-paste window, every byte value
    r = mpremote(board.path, "fs", "cp", str(src), ":data.bin", "+", "fs", "ls", "+",
                 "fs", "cp", ":data.bin", str(tmp_path / "back.bin"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "boot.py" in r.stdout and "data.bin" in r.stdout
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert upy.DeviceFS(tmp_path, "b1").read("data.bin") == src.read_bytes()
    # an error on the board comes back as mpremote's error, with the board's traceback
    r = mpremote(board.path, "exec", "raise ValueError('from the board')")
    assert r.returncode == 1 and "ValueError: from the board" in r.stdout + r.stderr


def test_mpremote_interrupts_a_running_main_py_and_reset_runs_it_again(board, tmp_path):
    """Ctrl-C while main.py runs is the port's keyboard interrupt, not a character; the
    board's program loops for ever until then. `mpremote reset` boots it again."""
    loop = "import time\nprint('MAIN UP')\nwhile True:\n    time.sleep_ms(5)\n"
    (tmp_path / "main.py").write_text(loop)
    r = mpremote(board.path, "fs", "cp", str(tmp_path / "main.py"), ":main.py", "+", "reset")
    assert r.returncode == 0, r.stdout + r.stderr
    r = mpremote(board.path, "exec", "print('AFTER', 1)")  # interrupts main.py first
    assert r.returncode == 0 and "AFTER 1" in r.stdout, r.stdout + r.stderr
    assert 75 in board.resets  # machine.reset() ended a run, and the board came up again


def test_a_corrupt_filesystem_is_not_reformatted_at_boot(tmp_path):
    """ports/esp32/modules/inisetup.py: a filesystem that does not mount is made afresh only
    on an erased flash; otherwise the port says it is corrupted and runs nothing, so the data
    stays for recovery (the emulation used to run mkfs)."""
    upy.provision_board(tmp_path, "b2", "client")
    img = upy.flash_image(tmp_path, "b2")
    data = bytearray(img.read_bytes())
    data[:8192] = b"\x00" * 8192  # both superblock copies
    img.write_bytes(bytes(data))
    r = upy.device_run("print('RAN')", tmp_path, "b2")
    assert r.returncode == 98 and "RAN" not in r.stdout
    assert "filesystem appears to be corrupted" in r.stdout
    assert img.read_bytes() == bytes(data)  # nothing was written


def _fleet(tmp_path, *args, env=None, timeout=300):
    e = dict(os.environ, CFGBOX_PASSPHRASE=PW, FLEET=str(tmp_path / "f.cfgbox"))
    e.update(env or {})
    return subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=upy.REPO,
                          env=e, capture_output=True, text=True, timeout=timeout)


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "tools.fleet", "--file",
                           str(tmp_path / "f.cfgbox"), *args], cwd=upy.REPO,
                          env=dict(os.environ, CFGBOX_PASSPHRASE=PW), capture_output=True,
                          text=True, timeout=300)


def test_make_flash_client_and_flash_box_and_pull_box_through_the_real_mpremote(tmp_path):
    """The README's commands against emulated boards on serial lines: `make flash-client`
    (REPL and NVS-image methods) commissions a client, `make flash-box` deploys the sealed
    store to a box with frozen firmware, the box boots sealed, and `make pull-box` brings its
    store back into the fleet file while the box runs."""
    assert _cli(tmp_path, "init", "--box", "cfgbox-s", "--ssid", "plant1", "--port", "8080",
                "--iterations", "1000").returncode == 0
    assert _cli(tmp_path, "enroll", "sensor-01", "sensor-02").returncode == 0
    with SerialBoard(tmp_path, "sensor-01") as c1:
        r = _fleet(tmp_path, "flash-client", "PORT=" + c1.path, "DEVICE=sensor-01")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "dk" not in r.stdout  # the secrets never show
    fs = upy.DeviceFS(tmp_path, "sensor-01")
    assert fs.exists("client_fw/provision.mpy") and fs.exists("main.py")
    boot = nvsimage.read((upy.device_dir(tmp_path, "sensor-01") / "nvs.bin").read_bytes())
    assert b'"dev":"sensor-01"' in boot[("cfgbox", "boot")]
    # the NVS-image method: the image is made with esp-idf-nvs-partition-gen, and written
    # with esptool (printed here: no ROM bootloader is emulated), the bundle with mpremote
    r = _fleet(tmp_path, "flash-client", "PORT=/dev/ttyUSB9", "DEVICE=sensor-02",
               "METHOD=nvs", "DRY_RUN=1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "esptool --chip esp32 --port /dev/ttyUSB9" in r.stdout and "0x9000" in r.stdout
    with SerialBoard(tmp_path, "box", frozen=True) as box:
        r = _fleet(tmp_path, "flash-box", "PORT=" + box.path)
        assert r.returncode == 0, r.stdout + r.stderr
        fs = upy.DeviceFS(tmp_path, "box")
        assert fs.exists("store/box.json") and fs.exists("main.py")
        assert not fs.exists("configurator_fw")  # frozen firmware: only main.py is copied
        r = _fleet(tmp_path, "pull-box", "PORT=" + box.path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "pulled box cfgbox-s: 2 devices" in r.stdout


def test_a_firmware_image_esptool_cannot_read_is_refused_before_the_board_is_touched(tmp_path):
    """FIRMWARE= is checked on the host with the real esptool (image-info) before any command
    for the board runs, even a printed one."""
    assert _cli(tmp_path, "init", "--box", "cfgbox-f", "--ssid", "plant1",
                "--iterations", "1000").returncode == 0
    bad = tmp_path / "not-firmware.bin"
    bad.write_bytes(b"this is not an ESP32 image" * 100)
    r = _fleet(tmp_path, "flash-box", "PORT=/dev/ttyUSB9", "FIRMWARE=" + str(bad), "DRY_RUN=1")
    assert r.returncode != 0 and "not an ESP32 image esptool can read" in r.stderr
    assert "mpremote" not in r.stdout
    r = _fleet(tmp_path, "flash-box", "PORT=/dev/ttyUSB9", "FIRMWARE=" + str(tmp_path / "no.bin"),
               "DRY_RUN=1")
    assert r.returncode != 0 and "no such firmware image" in r.stderr


def test_mpremote_mip_installs_the_client_from_its_package_json_and_it_provisions(tmp_path):
    """Stock firmware without make: `mpremote mip install` with the path of
    client_fw/package.json copies the client's sources (mip's own local install); with its
    bootstrap written, the board provisions from them within the board's heap."""
    from fleet import Fleet

    f = Fleet(tmp_path)
    f.set_defaults({"ntp": "pool.ntp.org"})
    with SerialBoard(tmp_path, "sensor-1") as b:
        r = mpremote(b.path, "mip", "install", "--target", "/",
                     str(upy.REPO / "client_fw" / "package.json"), timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    fs = upy.DeviceFS(tmp_path, "sensor-1")
    assert fs.exists("client_fw/provision.py") and fs.exists("shared/otp.py")
    assert fs.exists("main.py") and not fs.exists("client_fw/provision.mpy")
    f.enroll("sensor-1")
    f.start_box()
    try:
        assert f.check("sensor-1") == ("ok", {"ntp": "pool.ntp.org"})
    finally:
        f.stop_box()
