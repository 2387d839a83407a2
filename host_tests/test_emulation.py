# The board emulation (host_tests/emu, frozen into the 32-bit test interpreter) against the ESP32
# port's behaviour as docs/EMULATION.md lists it: WLAN status codes, the clock from 2000, RTC
# memory and a DS3231, NVS, lwIP's 10 sockets, the LittleFS flash with power cuts and ENOSPC.
# Each script runs on an emulated board through the firmware's seam (shared/board.py).
import socket
import subprocess
import threading

from littlefs import LittleFS

import upy_harness as upy
from fleet import free_port

AP_UP = """
from shared.board import Board
ap = Board().wlan('ap')
ap.active(True)
ap.config(ssid='cfgbox', key='correct horse', authmode=3, max_clients={n})
print('AP', ap.ifconfig()[0])
"""

# connect, then read status() at the given emulated moments (ms after connect())
JOIN = """
from shared.board import Board
import time
sta = Board().wlan('sta')
sta.active(True)
print('SCAN', [s[0] for s in sta.scan()])
{before}
sta.connect({ssid!r}, {key!r})
seen = [sta.status()]
for wait in (1000, 1000, 2000, 10000):
    time.sleep_ms(wait)
    seen.append(sta.status())
print('STATUS', seen, sta.isconnected(), sta.ifconfig()[0])
"""


def _ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _join(tmp_path, dev, ssid="cfgbox", key="correct horse", before=""):
    out = _ok(upy.device_run(JOIN.format(ssid=ssid, key=key, before=before), tmp_path, dev))
    return out.split("STATUS ")[1].strip()


def test_station_status_codes_follow_the_port(tmp_path):
    _ok(upy.device_run(AP_UP.format(n=2), tmp_path, "box"))
    # connect() only starts an attempt: 1001 until it resolves, then the reason as the port reads
    assert _join(tmp_path, "d1", key="wrong key") == "[1001, 1001, 202, 202, 202] False 0.0.0.0"
    assert _join(tmp_path, "d1", ssid="other") == "[1001, 1001, 201, 201, 201] False 0.0.0.0"
    assert _join(tmp_path, "d1") == "[1001, 1001, 1010, 1010, 1010] True 127.0.4.2"
    assert _join(tmp_path, "d2") == "[1001, 1001, 1010, 1010, 1010] True 127.0.4.3"
    # max_clients=2 are joined: the AP refuses the third, which the port reads as still connecting
    assert _join(tmp_path, "d3") == "[1001, 1001, 1001, 1001, 1001] False 0.0.0.0"


def test_a_stale_reason_stands_until_an_ip_and_disconnect_reads_idle(tmp_path):
    retry = ("sta.connect('cfgbox', 'correct horse')\ntime.sleep_ms(3000)\n"
             "print('FIRST', sta.status())\n"
             "ap = Board().wlan('ap')\n"
             "ap.active(True)\nap.config(ssid='cfgbox', key='correct horse', authmode=3)\n"
             "sta.disconnect()\n")  # a second connect() while the driver retries would raise
    # the first attempt finds no AP (201); the retry's status reads 201 until it gets an IP
    out = _join(tmp_path, "d1", before=retry)
    assert out == "[201, 201, 1010, 1010, 1010] True 127.0.4.2"
    leave = ("from shared.board import Board\nimport time\nsta = Board().wlan('sta')\n"
             "sta.active(True)\nsta.connect('cfgbox', 'correct horse')\ntime.sleep_ms(2000)\n"
             "a = sta.status()\nsta.disconnect()\nprint('LEFT', a, sta.status())\n")
    assert "LEFT 1010 1000" in _ok(upy.device_run(leave, tmp_path, "d1"))


def test_a_full_ap_takes_the_station_once_a_slot_frees(tmp_path):
    _ok(upy.device_run(AP_UP.format(n=1), tmp_path, "box"))
    assert _join(tmp_path, "d1").endswith("True 127.0.4.2")
    script = """
from shared.board import Board
import time
sta = Board().wlan('sta')
sta.active(True)
sta.connect('cfgbox', 'correct horse')
time.sleep_ms(5000)
print('FULL', sta.status(), sta.isconnected())
import emu_registry as reg
reg.remove(reg.path('sta', 'cfgbox'.encode().hex(), '127.0.4.2'))  # d1 leaves
time.sleep_ms(2000)
print('THEN', sta.status(), sta.ifconfig()[0])
"""
    out = _ok(upy.device_run(script, tmp_path, "d2"))
    # d1's lease outlives its association (dhcpserver.c frees leases only as they expire)
    assert "FULL 1001 False" in out and "THEN 1010 127.0.4.3" in out


def test_ap_refuses_more_clients_than_a_softap_takes(tmp_path):
    r = upy.device_run(AP_UP.format(n=11), tmp_path, "box")
    assert r.returncode == 1 and "OSError" in r.stderr


def test_station_address_is_seen_by_the_server_as_a_tuple(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.4.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    seen = []

    def accept():
        conn, addr = srv.accept()
        seen.append(addr[0])
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    _ok(upy.device_run(AP_UP.format(n=10), tmp_path, "box"))
    script = JOIN.format(ssid="cfgbox", key="correct horse", before="") + """
import socket
ai = socket.getaddrinfo('127.0.4.1', {port})[0][-1]
print('ADDR', ai)
s = socket.socket()
s.bind(socket.getaddrinfo(sta.ifconfig()[0], 0)[0][-1])
s.connect(ai)
s.close()
""".format(port=port)
    out = _ok(upy.device_run(script, tmp_path, "d7"))
    t.join(10)
    srv.close()
    assert seen == ["127.0.4.2"] and "ADDR ('127.0.4.1', %d)" % port in out


SOCKETS = """
import socket
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(socket.getaddrinfo('127.0.4.1', {port})[0][-1])
ls.listen(20)
print('READY')
import sys
sys.stdin.readline()  # the host has made 10 connections
got = []
for i in range(10):
    try:
        got.append(ls.accept()[0])
    except OSError as e:
        print('ACCEPT', i, e.args[0])
try:
    socket.socket()
except OSError as e:
    print('SOCKET', e.args[0])
got[0].close()
socket.socket().close()
print('AFTER CLOSE ok', len(got))
"""


def test_ten_sockets_per_board_listener_included(tmp_path):
    port = free_port()
    upy.provision_board(tmp_path, "box", "client")
    p = subprocess.Popen(upy.board_cmd(SOCKETS.format(port=port), upy.ESP32_HEAP), text=True,
                         cwd=upy.device_dir(tmp_path, "box"), env=upy.board_env(tmp_path, "box"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().strip() == "READY"
    peers = [socket.create_connection(("127.0.4.1", port), 5) for _ in range(10)]
    out, err = p.communicate("go\n", timeout=300)
    assert p.returncode == 0, out + err
    # the listener and 9 connections: the 10th connection is dropped (ENFILE), as lwIP does
    assert "ACCEPT 9 23" in out and "SOCKET 23" in out and "AFTER CLOSE ok 9" in out, out
    for c in peers:
        c.close()


CLOCK = """
from shared.board import Board
from shared import clock
import time
b = Board()
print('BOOT', time.time(), time.gmtime()[:6], clock.epoch_offset(), b.unix_now())
print('MEM', b.rtc_memory())
{then}
"""


def test_every_power_on_starts_the_clock_at_2000_and_a_reset_keeps_it(tmp_path):
    world = upy.World(tmp_path)
    first = _ok(upy.device_run(CLOCK.format(then="time.sleep(90)\nprint('UP', time.time(), "
                                            "time.ticks_ms())\nb.set_unix_time(1795219290)\n"
                                            "b.rtc_memory(b'kept')\nprint('SET', b.unix_now(), "
                                            "b.machine.RTC().datetime())"), tmp_path, "d1"))
    assert "BOOT 0 (2000, 1, 1, 0, 0, 0) 946684800 946684800" in first
    assert "MEM b''" in first and "UP 90 90000" in first
    assert "SET 1795219290 (2026, 11, 21, 5, 0, 1, 30, 0)" in first
    assert world.now() == upy.WORLD_START + 90  # sleeping moved the world on
    world.advance(10)
    # a software reset: the clock ran on, RTC memory kept
    reset = _ok(upy.device_run(CLOCK.format(then=""), tmp_path, "d1"))
    assert "BOOT %d" % (1795219300 - 946684800) in reset and "MEM b'kept'" in reset
    assert " 1795219300" in reset
    # a power-on: back to 2000, RTC memory gone
    cold = _ok(upy.device_run(CLOCK.format(then=""), tmp_path, "d1", cold=True))
    assert "BOOT 0 (2000, 1, 1, 0, 0, 0)" in cold and "MEM b''" in cold


DS3231 = """
from shared.board import Board
from configurator_fw import timekeeper
b = Board()
print('READ', timekeeper.ds3231_read(b.i2c()))
{then}
"""


def test_ds3231_keeps_the_world_time_across_power_ons_once_set(tmp_path):
    world = upy.World(tmp_path)
    r = _ok(upy.device_run(DS3231.format(then=""), tmp_path, "box", bundle="configurator"))
    assert "READ None" in r  # none fitted
    upy.device_dir(tmp_path, "box").joinpath("ds3231.json").write_text(
        '{"offset": -800000000, "osf": true}')  # fitted, never set: its time means nothing
    assert "READ None" in _ok(upy.device_run(DS3231.format(then=""), tmp_path, "box"))
    now = world.now()
    out = _ok(upy.device_run(DS3231.format(
        then=f"print('WROTE', timekeeper.ds3231_write(b.i2c(), {now}))"), tmp_path, "box"))
    assert "WROTE True" in out
    world.advance(3600)
    cold = _ok(upy.device_run(DS3231.format(then=""), tmp_path, "box", cold=True))
    assert "READ %d" % (now + 3600) in cold


FLASH = """
import os
st = os.statvfs('/')
print('FS', st[0], st[2], st[3])
n = 0
try:
    while True:
        with open('fill%d' % n, 'wb') as f:
            f.write(b'x' * 200)
        n += 1
except OSError as e:
    print('FULL', e.args[0], n)
"""


def test_flash_is_a_2mib_littlefs_with_4k_blocks_that_fills(tmp_path):
    out = _ok(upy.device_run(FLASH, tmp_path, "d1"))
    fs, full = out.split("\n")[0].split(), out.split("FULL ")[1].split()
    assert fs[:3] == ["FS", "4096", "512"]
    free_blocks = int(fs[3])
    # one 4 KB block per file of 200 B (and the directory's metadata grows): ENOSPC at about
    # the free block count, not at 2 MiB / 200 B
    assert full[0] == "28" and 0.9 * free_blocks <= int(full[1]) <= free_blocks
    # an independent LittleFS (littlefs-python) reads the board's flash
    data = bytearray(upy.flash_image(tmp_path, "d1").read_bytes())
    fs_host = upy._fs(data)
    fs_host.mount()
    assert isinstance(fs_host, LittleFS) and "fill0" in fs_host.listdir("/")


CUT = """
from shared.board import Board
import emu_boot
b = Board()
b.write_atomic('rec.json', {new!r})
print('OPS', emu_boot.bdev.programs + emu_boot.bdev.erases)
"""


def test_a_power_cut_at_any_flash_write_of_write_atomic_leaves_old_or_new(tmp_path):
    """Board.write_atomic, the path every store write takes, cut at each program or erase it
    makes: after the reboot the file is the old or the new one, whole, never torn."""
    old, new = b"old " * 300, b"new " * 350
    upy.provision_board(tmp_path, "d1", "client")
    upy.DeviceFS(tmp_path, "d1").write("rec.json", old)
    base = upy.flash_image(tmp_path, "d1").read_bytes()
    out = _ok(upy.device_run(CUT.format(new=new), tmp_path, "d1"))
    ops = int(out.split("OPS ")[1])
    assert upy.DeviceFS(tmp_path, "d1").read("rec.json") == new
    assert ops >= 3
    for cut in range(1, ops + 1):
        upy.flash_image(tmp_path, "d1").write_bytes(base)
        r = upy.device_run(CUT.format(new=new), tmp_path, "d1", env={"EMU_CUT_AT": str(cut)})
        assert r.returncode == upy.CUT_EXIT, (cut, r.stdout + r.stderr)
        # the board boots again and reads the file
        back = _ok(upy.device_run("print(open('rec.json','rb').read().hex())", tmp_path, "d1"))
        got = bytes.fromhex(back.strip())
        # a torn last operation (LittleFS's commit of the rename) leaves the old file too
        assert got in (old, new), cut


def test_emulation_overhead_is_measured_and_small():
    # what the harness adds to every board's heap for the emulation's own objects
    assert 2000 < upy.emu_overhead() < 12000


def test_wlan_objects_of_one_interface_are_one_driver_and_random_leaves_the_mode(tmp_path):
    """On the port every network.WLAN(STA_IF) is the same driver (network_wlan.c hands out
    one static object per interface): a second object sees the first one's state. Drawing a
    long-term secret through Board.random() brings the radio up only for the draw and leaves
    the WiFi mode as it found it (it used to leave the station up for good)."""
    out = _ok(upy.device_run(
        "import network\nfrom shared.board import Board\n"
        "a = network.WLAN(network.STA_IF)\na.active(True)\n"
        "print('SHARED', network.WLAN(network.STA_IF).active())\na.active(False)\n"
        "b = Board()\nb.random(16)\n"
        "print('AFTER', network.WLAN(network.STA_IF).active(), "
        "network.WLAN(network.AP_IF).active())\n", tmp_path, "d1"))
    assert "SHARED True" in out and "AFTER False False" in out


def test_a_second_connect_while_the_driver_retries_raises_and_join_still_works(tmp_path):
    """On the port a connect() while the station is still trying raises OSError("Wifi Internal
    Error") (ESP_ERR_WIFI_CONN; micropython#17661); the emulation accepted it. The firmware's
    join stops any attempt first, so it joins after an application left one retrying."""
    out = _ok(upy.device_run(
        "import network\nfrom client_fw import wlan\n"
        "s = network.WLAN(network.STA_IF)\ns.active(True)\ns.connect('no-such-ap', 'x' * 8)\n"
        "try:\n    s.connect('no-such-ap', 'x' * 8)\n    print('ACCEPTED')\n"
        "except OSError as e:\n    print('RAISED', e.args[0])\n"
        "try:\n    wlan.join(s, 'no-such-ap', 'x' * 8)\nexcept wlan.JoinError as e:\n"
        "    print('JOIN', e.reason)\n", tmp_path, "d1"))
    assert "RAISED Wifi Internal Error" in out and "ACCEPTED" not in out
    assert "JOIN" in out  # a clean failure of its own (no AP), not the driver's OSError


MODES = """
import network
ap = network.WLAN(network.AP_IF)
sta = network.WLAN(network.STA_IF)
def err(f):
    try:
        f()
        return 'ok'
    except Exception as e:
        return type(e).__name__ + ':' + str(e)
print('FRESH', ap.active(), sta.active(), err(lambda: ap.config(ssid='x1')))
sta.active(True)
print('STA', err(lambda: ap.config(ssid='x2')), err(lambda: sta.disconnect()))
sta.active(False)
print('STOPPED', err(lambda: ap.config(ssid='x3')), err(lambda: sta.disconnect()),
      err(lambda: sta.connect('cfgA', 'k' * 8)), sta.scan())
ap.active(True)
print('AP', ap.active(), sta.active(),
      err(lambda: ap.config(ssid='cfgA', key='k' * 8, authmode=3)), err(lambda: sta.scan()))
sta.active(True)
print('BOTH', ap.active(), sta.active(), [s[0] for s in sta.scan()])
ap.active(False)
print('STAONLY', ap.active(), sta.active(), err(lambda: ap.config(ssid='x4')), sta.scan())
"""


def test_wifi_modes_and_what_the_port_refuses(tmp_path):
    """network_wlan_active sets the driver's mode bit by bit and stops the driver when none is
    left (the mode stays); esp_wifi_set_config refuses an interface outside the mode, so a
    softAP cannot be configured while the mode is station-only or before it ever ran."""
    out = _ok(upy.device_run(MODES, tmp_path, "d1")).splitlines()
    assert out == [
        "FRESH False False OSError:Wifi Invalid Mode",
        "STA OSError:Wifi Invalid Mode ok",
        "STOPPED OSError:Wifi Invalid Mode OSError:Wifi Not Started OSError:Wifi Not Started []",
        "AP True False ok OSError:STA must be active",
        "BOTH True True [b'cfgA']",
        "STAONLY False True OSError:Wifi Invalid Mode []",
    ], out


KEYS = """
import machine, network
ap = network.WLAN(network.AP_IF)
sta = network.WLAN(network.STA_IF)
def err(f):
    try:
        return f()
    except Exception as e:
        return type(e).__name__ + ':' + str(e)
ap.active(True)
ap.config(essid='one')
a = ap.config('ssid')
ap.config(ssid='two', password='k' * 8, security=3)
print('NAMES', a, ap.config('essid'), ap.config('authmode'), ap.config('max_clients'))
print('KEY', err(lambda: ap.config('key')), err(lambda: ap.config('password')))
print('MIXED', err(lambda: ap.config('ssid', ssid='x')), err(lambda: ap.config('ssid', 'channel')),
      err(lambda: ap.config()))
print('IF', err(lambda: sta.config(ssid='x')), err(lambda: ap.config(reconnects=2)),
      err(lambda: sta.config('hidden')))
print('UNKNOWN', err(lambda: ap.config(bogus=1)), err(lambda: ap.config('bogus')))
m1, m2 = sta.config('mac'), ap.config('mac')
print('MAC', len(m1), len(m2), m1 == machine.unique_id(), m1 != m2)
print('ARG', err(lambda: ap.config(max_clients=11)), err(lambda: ap.config(key='short')),
      ap.config('ssid'))
"""


def test_config_keys_as_the_port_has_them(tmp_path):
    """network_wlan_config: essid and ssid are one key, the key cannot be read back, positional
    and keyword arguments do not mix, AP-only keys need the AP, 'mac' reads both interfaces
    (the station's is the base MAC that machine.unique_id() returns), and a refused set
    changes nothing."""
    out = _ok(upy.device_run(KEYS, tmp_path, "d1")).splitlines()
    assert out == [
        "NAMES one two 3 10",
        "KEY ValueError:unknown config param ValueError:unknown config param",
        "MIXED TypeError:either pos or kw args are allowed TypeError:can query only one param "
        "TypeError:can query only one param",
        "IF OSError:AP required OSError:STA required OSError:AP required",
        "UNKNOWN ValueError:unknown config param ValueError:unknown config param",
        "MAC 6 6 True True",
        "ARG OSError:Wifi Invalid Argument RuntimeError:Wifi Unknown Error 0x0102 two",
    ], out


def test_the_softap_dhcp_pool_drops_its_oldest_lease_even_of_a_station_still_there(tmp_path):
    """Stock firmware's softAP has 8 DHCP leases (CONFIG_LWIP_DHCPS_MAX_STATION_NUM) and frees
    none when a station leaves: with 10 stations joined, the pool holds the last 8 and has
    dropped the first two stations' leases although they are still on the AP. Addresses come
    from a rotating pointer, so each of the 10 gets its own; a pool of 10 (the firmware of
    tools/firmware) keeps them all."""
    import json

    _ok(upy.device_run(AP_UP.format(n=10), tmp_path, "box"))
    got = [_join(tmp_path, "d%d" % i) for i in range(1, 11)]
    assert [g.split()[-2:] for g in got] == [["True", "127.0.4.%d" % n] for n in range(2, 12)]
    pool = json.loads((tmp_path / "lease" / ("cfgbox".encode().hex() + ".json")).read_text())
    assert sorted(lease[0] for lease in pool["leases"]) == sorted("d%d" % i for i in range(3, 11))

    big = tmp_path / "pool10"
    big.mkdir()
    _ok(upy.device_run(AP_UP.format(n=10), big, "box", env={"EMU_DHCPS_LEASES": "10"}))
    for i in range(1, 11):
        _join(big, "d%d" % i)
    pool = json.loads((big / "lease" / ("cfgbox".encode().hex() + ".json")).read_text())
    assert len(pool["leases"]) == 10


WRAP = """
import network
import emu_registry as reg
d = network._slots('cfgbox')
reg.ensure_dir('sta', 'cfgbox'.encode().hex())
def lease(name, taken):
    reg.device = lambda: name
    return network._dhcp('cfgbox', 8, '127.0.4', d, taken)
a = lease('slow', [])
with open(d + '/' + a, 'w') as f:
    f.write('slow')  # the slow station stays joined; the others come and go
got = [lease('s%d' % i, [a]) for i in range(100)]
print('SLOW', a, got[:2], got[98], got[99])
reg.remove(d + '/' + a)  # the slow one leaves
print('AFTER', lease('late', []))
"""


def test_the_pool_pointer_wraps_onto_a_joined_station_and_the_newcomer_declines(tmp_path):
    """parse_msg's pointer moves one address per new lease over the server's 100 (.2-.101)
    and wraps: after 100 stations have come and gone, it offers the address of a station that
    is still joined but whose lease was dropped long ago; lwIP's ARP check makes the newcomer
    decline it, so that newcomer has no address until the old station leaves."""
    upy.World(tmp_path)
    out = _ok(upy.device_run(WRAP, tmp_path, "box")).splitlines()
    assert out[0] == ("SLOW 127.0.4.2 ['127.0.4.3', '127.0.4.4'] 127.0.4.101 None"), out
    assert out[1].startswith("AFTER 127.0.4."), out


HEAP_AREAS = """
import gc, emuheap
gc.collect()
print('FREE', gc.mem_free(), gc.mem_alloc(), emuheap.areas())
try:
    big = bytearray(60 * 1024)
    print('BIG', 'allocated')
except MemoryError:
    print('BIG', 'MemoryError')
a = bytearray(40 * 1024)
b = bytearray(12 * 1024)
c = bytearray(12 * 1024)
print('GREW', emuheap.areas())
a = b = c = None
gc.collect()
print('BACK', emuheap.areas())
"""


def test_the_heap_grows_in_areas_and_no_block_spans_two(tmp_path):
    """ports/esp32 (v1.25.0 to v1.28.0): a first GC area of 56 KB, then areas added on demand
    from the IDF heap (MICROPY_GC_SPLIT_HEAP_AUTO), none larger than its largest free block,
    and an emptied area given back. gc.mem_free() counts what the heap could still grow by, so
    a 60 KB block fails on a 110 KB board that reports over 100 KB free."""
    out = _ok(upy.device_run(HEAP_AREAS, tmp_path, "d1")).splitlines()
    _, free, alloc, areas = out[0].split(" ", 3)
    assert areas == "[]" and int(free) > 100 * 1024, out
    assert int(free) + int(alloc) <= upy.ESP32_HEAP + upy.emu_overhead(), out
    assert out[1] == "BIG MemoryError", out
    assert out[2] == "GREW [%d]" % (upy.ESP32_HEAP - upy.FIRST_AREA), out
    assert out[3] == "BACK []", out


def test_a_lock_left_by_a_board_whose_power_was_cut_does_not_stop_the_others(tmp_path):
    """The registry's lock is a directory; a board killed while holding it (a power cut, or
    the serial bridge powering it off) leaves it behind. Once it is older than anything it
    guards could take, the next board breaks it instead of failing."""
    import os
    import time

    _ok(upy.device_run(AP_UP.format(n=2), tmp_path, "box"))
    lock = tmp_path / "lock"
    lock.mkdir()
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert _join(tmp_path, "d1").endswith("True 127.0.4.2")
    assert not lock.exists()
