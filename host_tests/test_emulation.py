# The host emulation of network / machine / esp32, exercised under MicroPython through the seam
# (shared/board.py), with the ESP32 semantics the firmware relies on.
import socket
import threading

import upy_harness as upy

AP_UP = """
from shared.board import Board
b = Board()
ap = b.wlan('ap')
ap.config(ssid='cfgbox', key='correct horse', authmode=3, max_clients={n})
ap.active(True)
print('AP', ap.ifconfig()[0])
"""

JOIN = """
from shared.board import Board
import network
sta = Board().wlan('sta')
sta.active(True)
print('SCAN', [s[0] for s in sta.scan()])
sta.connect({ssid!r}, {key!r})
print('STATUS', sta.status(), sta.isconnected(), sta.ifconfig()[0])
"""


def _ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_ap_and_station_rules(tmp_path):
    assert "AP 127.0.4.1" in _ok(upy.device_run(AP_UP.format(n=2), tmp_path, "box"))
    wrong = _ok(upy.device_run(JOIN.format(ssid="cfgbox", key="wrong key"), tmp_path, "d1"))
    assert "SCAN [b'cfgbox']" in wrong and "STATUS 202 False 0.0.0.0" in wrong
    unknown = _ok(upy.device_run(JOIN.format(ssid="other", key="x"), tmp_path, "d1"))
    assert "STATUS 201 False" in unknown
    a = _ok(upy.device_run(JOIN.format(ssid="cfgbox", key="correct horse"), tmp_path, "d1"))
    b = _ok(upy.device_run(JOIN.format(ssid="cfgbox", key="correct horse"), tmp_path, "d2"))
    assert "STATUS 1010 True 127.0.4.2" in a and "STATUS 1010 True 127.0.4.3" in b
    # a third station while max_clients=2 are joined is refused
    c = _ok(upy.device_run(JOIN.format(ssid="cfgbox", key="correct horse"), tmp_path, "d3"))
    assert "STATUS 203 False" in c
    # one leaves (joins again as the same station, then disconnects): its slot is free again
    leave = JOIN.format(ssid="cfgbox", key="correct horse") + "sta.disconnect()\nprint('LEFT')"
    out = _ok(upy.device_run(leave, tmp_path, "d1"))
    assert "STATUS 1010 True 127.0.4.2" in out and "LEFT" in out
    again = _ok(upy.device_run(JOIN.format(ssid="cfgbox", key="correct horse"), tmp_path, "d3"))
    assert "STATUS 1010 True 127.0.4.2" in again


def test_station_address_is_seen_by_the_server(tmp_path):
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
    script = JOIN.format(ssid="cfgbox", key="correct horse") + """
import socket
s = socket.socket()
s.bind(socket.getaddrinfo(sta.ifconfig()[0], 0)[0][-1])
s.connect(socket.getaddrinfo('127.0.4.1', {port})[0][-1])
s.close()
""".format(port=port)
    _ok(upy.device_run(script, tmp_path, "d7"))
    t.join(10)
    srv.close()
    assert seen == ["127.0.4.2"]


NVS = """
from shared.board import Board
b = Board()
n = b.nvs('boot')
try:
    n.get_i32('count')
    print('HAVE', n.get_i32('count'))
except OSError as e:
    print('ABSENT', e.args[0])
n.set_i32('count', {v})
n.set_blob('key', b'\\x01\\x02\\x03')
buf = bytearray(8)
print('BLOB', bytes(buf[:n.get_blob('key', buf)]))
if {commit}:
    n.commit()
print('UID', b.unique_id().hex())
"""


def test_nvs_persists_per_device_after_commit_only(tmp_path):
    first = _ok(upy.device_run(NVS.format(v=1, commit=False), tmp_path, "d1"))
    assert "ABSENT -4354" in first and "BLOB b'\\x01\\x02\\x03'" in first
    # not committed: gone after "reboot"
    assert "ABSENT" in _ok(upy.device_run(NVS.format(v=2, commit=True), tmp_path, "d1"))
    assert "HAVE 2" in _ok(upy.device_run(NVS.format(v=3, commit=True), tmp_path, "d1"))
    other = _ok(upy.device_run(NVS.format(v=9, commit=True), tmp_path, "d2"))
    assert "ABSENT" in other  # each device has its own NVS
    uid1 = first.split("UID ")[1].split()[0]
    uid2 = other.split("UID ")[1].split()[0]
    assert len(uid1) == 12 and uid1 != uid2


def test_rtc_and_unix_time_through_the_seam(tmp_path):
    out = _ok(upy.device_run("""
from shared.board import Board
b = Board()
b.set_unix_time(1795219200)
print('RTC', b.machine.RTC().datetime()[:3])
print('NOW', b.unix_now() > 1735689600)
""", tmp_path, "d1"))
    assert "RTC (2026, 11, 21)" in out and "NOW True" in out
