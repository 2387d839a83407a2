# `make bench`, the hostile-network figures of issue 8: the box under 1,000 idle connections and
# 10,000 malformed requests while a real device provisions; enrolled vs unknown ids' auth timing
# at the box; and how often an attacker holding the device key alone succeeds (target 0).
import hashlib
import hmac
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import upy_harness as upy
from fleet import Fleet
from shared import protocol

CHECK = """
from client_fw.device import Device
from shared.board import Board
print('STATUS', Device(Board()).check(force=True, attempts=8))
"""

MALFORMED = [
    b"GET / HTTP/1.1\r\n\r\n",
    b"POST /api/v2/hello HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/v2/hello HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
    b"POST /api/v2/hello HTTP/1.1\r\nX: " + b"a" * 4000 + b"\r\n\r\n",
    b"POST /api/v2/hello HTTP/1.1\r\n" + b"X-A: b\r\n" * 40 + b"\r\n",
    b"POST /api/v2/auth HTTP/1.1\r\nContent-Length: 12\r\n\r\n{broken json",
    b"POST /api/v2/auth HTTP/1.1\r\nContent-Length: 600\r\n\r\n" + b"[" * 300 + b"]" * 300,
    b"POST /api/v2/config HTTP/1.1\r\nContent-Length: 16\r\n\r\n{\"v\": 2, \"x\": 1}",
    b"POST /api/v2/hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200),
    b"OPTIONS /api/v2/ack HTTP/1.1\r\n\r\n",
    b"POST /api/v2/ack HTTP/1.1\r\nContent-Length: 3\r\n\r\n[1]",
]


_lock = threading.Lock()


def _station(i, net=6):
    return "127.0.%d.%d" % (net, 1 + i % 250)


def _pump(world, stop, step=0.05, rate=10):
    """Let the emulated world's time pass while the attack runs: ``rate`` times the host's pace
    (the box's deadlines are in emulated time; a board's own sleeps move it too)."""
    while not stop.is_set():
        time.sleep(step)
        world.advance(step * rate)


def _idle(port, n, stop, stats):
    held = []
    for i in range(n):
        if stop.is_set():
            break
        s = socket.socket()
        s.settimeout(2)
        try:
            s.bind((_station(i), 0))
            s.connect(("127.0.4.1", port))
            s.send(b"POST /api/v2/hello HTTP/1.1\r\n")  # and then nothing
            stats["idle opened"] += 1
        except OSError:
            s.close()
            continue
        held.append(s)
        if len(held) > 200:  # the host's own descriptors are finite too
            held.pop(0).close()
    for s in held:
        s.close()


def _malformed(port, n, stop, stats, start=0, every=1):
    for i in range(start, n, every):
        if stop.is_set():
            break
        data = MALFORMED[i % len(MALFORMED)]
        try:
            s = socket.socket()
            s.settimeout(10)
            s.bind((_station(i, 7), 0))
            s.connect(("127.0.4.1", port))
            s.sendall(data)
            answer = s.recv(64)
            code = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else "closed"
        except OSError:
            code = "reset"
        finally:
            s.close()
        with _lock:
            stats[code] = stats.get(code, 0) + 1
            stats["malformed sent"] += 1


def under_attack(n_idle=1000, n_malformed=10000):
    """(box still up, device status, host s and emulated s to its success, stats)."""
    d = Path(tempfile.mkdtemp(prefix="bench-attack-"))
    f = Fleet(d)
    f.set_defaults({"mqtt": {"host": "mqtt.example.net", "port": 8883}})
    f.enroll("victim")
    f.start_box()
    stats = {"idle opened": 0, "malformed sent": 0}
    stop = threading.Event()
    threads = [threading.Thread(target=_pump, args=(f.world, stop)),
               threading.Thread(target=_idle, args=(f.port, n_idle, stop, stats))]
    senders = [threading.Thread(target=_malformed, args=(f.port, n_malformed, stop, stats, k, 4))
               for k in range(4)]  # four attackers at once
    threads += senders
    t0, w0 = time.time(), f.world.now()
    for t in threads:
        t.start()
    try:
        time.sleep(1)  # the attack is under way before the device boots
        p = subprocess.run(upy.board_cmd(CHECK, upy.ESP32_HEAP), text=True,
                           cwd=upy.device_dir(d, "victim"), env=upy.board_env(d, "victim"),
                           capture_output=True, timeout=600)
        took, world_took = time.time() - t0, f.world.now() - w0
        status = p.stdout.split("STATUS ", 1)[1].strip() if "STATUS " in p.stdout else \
            (p.stdout + p.stderr)[-200:]
        for t in threads[1:]:  # every malformed request is sent, every idle connection opened
            t.join()
    finally:
        stop.set()
        for t in threads:
            t.join()
    up = f.box_proc.poll() is None
    try:
        s, _ = _post(f.port, "/api/v2/hello", {"v": 2, "dev": "victim", "cn": "00" * 16})
        up = up and s == 200
    except OSError:
        up = False
    log = f.box_log_text()
    stats["box tracebacks"] = log.count("Traceback")
    stats["box MemoryErrors"] = log.count("MemoryError") + log.count("out of memory")
    f.stop_box()
    return up, status, took, world_took, stats


def _post(port, path, obj, src="127.0.8.1"):
    s = socket.socket()
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.4.1", port))
    body = json.dumps(obj).encode()
    s.sendall(b"POST %s HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
              b"\r\n%s" % (path.encode(), len(body), body))
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body) if body.startswith(b"{") else body


def auth_timing(n=60):
    """Failed auths at the real box for enrolled and unknown ids, interleaved: host ms each."""
    d = Path(tempfile.mkdtemp(prefix="bench-timing-"))
    f = Fleet(d)
    names = ["sensor-%02d" % i for i in range(20)]
    for name in names:
        f.enroll(name)
    f.start_box()
    times = {"enrolled": [], "unknown": []}
    try:
        for i in range(n):
            for kind, dev in (("enrolled", names[i % 20]), ("unknown", "ghost-%02d" % (i % 20))):
                src = "127.0.9.%d" % (1 + (2 * i + (kind == "unknown")) % 250)
                _, h = _post(f.port, "/api/v2/hello", {"v": 2, "dev": dev, "cn": "00" * 16}, src)
                body = {"v": 2, "dev": dev, "cn": "00" * 16, "sn": h["sn"],
                        "c": h["t"] // 30, "dp": "00" * 32}
                t = time.perf_counter()
                s, _ = _post(f.port, "/api/v2/auth", body, src)
                times[kind].append((time.perf_counter() - t) * 1000)
                assert s in (401, 429), s
    finally:
        f.stop_box()
    return times


def _hkdf_expand_one(prk, info):
    return hmac.digest(prk, info + b"\x01", hashlib.sha256)


def dk_only_attacker(codes=10**6, active=20):
    """The attacker holds DK (not T) and a recorded exchange. Offline: every 6-digit code, for
    every step of the box's window, under each key DK alone yields (DK itself, as v1 used it;
    K made with an all-zero T): how many candidates verify the recorded dp. Online: auths at the
    real box with the right DK and a guessed T. Returns (successes, attempts)."""
    d = Path(tempfile.mkdtemp(prefix="bench-dk-"))
    f = Fleet(d)
    boot = f.enroll("sensor-dk")
    f.start_box()
    dk, t_secret = bytes.fromhex(boot["dk"]), bytes.fromhex(boot["totp"])
    dev, box = "sensor-dk", boot["box"]
    try:
        cn = os.urandom(16)
        _, h = _post(f.port, "/api/v2/hello", {"v": 2, "dev": dev, "cn": cn.hex()})
        sn, c = bytes.fromhex(h["sn"]), h["t"] // 30
        k = protocol.long_term_key(dk, t_secret)  # the device's side, for the recording
        sk = protocol.session_key(k, cn, sn, box, dev, c, protocol.code(t_secret, c))
        dp = protocol.mac(sk, "cfgbox/2 dev", box, dev, cn, sn, c)
        s, _ = _post(f.port, "/api/v2/auth", {"v": 2, "dev": dev, "cn": cn.hex(),
                                               "sn": sn.hex(), "c": c, "dp": dp.hex()})
        assert s == 200, s
        wins = tries = 0
        dp_input = protocol.tr("cfgbox/2 dev", box, dev, cn, sn, c)
        for key in (dk, protocol.long_term_key(dk, bytes(20))):
            prk = hmac.digest(cn + sn, key, hashlib.sha256)  # HKDF-Extract, once per key
            for code in range(codes):
                info = protocol.tr("cfgbox/2 session", box, dev, c, "%06d" % code)
                cand = _hkdf_expand_one(prk, info)
                tries += 1
                if hmac.compare_digest(hmac.digest(cand, dp_input, hashlib.sha256), dp):
                    wins += 1
        for i in range(active):  # online: the right DK, a random T, a fresh hello each time
            cn = os.urandom(16)
            src = "127.0.10.%d" % (1 + i)
            _, h = _post(f.port, "/api/v2/hello", {"v": 2, "dev": dev, "cn": cn.hex()}, src)
            if "sn" not in h:
                continue
            sn, step = bytes.fromhex(h["sn"]), h["t"] // 30
            guess = os.urandom(20)
            kk = protocol.long_term_key(dk, guess)
            sk = protocol.session_key(kk, cn, sn, box, dev, step, protocol.code(guess, step))
            s, _ = _post(f.port, "/api/v2/auth", {
                "v": 2, "dev": dev, "cn": cn.hex(), "sn": sn.hex(), "c": step,
                "dp": protocol.mac(sk, "cfgbox/2 dev", box, dev, cn, sn, step).hex()}, src)
            tries += 1
            wins += s == 200
    finally:
        f.stop_box()
    return wins, tries


def rows(row):
    out = []
    up, status, took, world_took, stats = under_attack()
    out.append(row("box up after 1,000 idle connections and 10,000 malformed requests", up,
                   "up", up))
    out.append(row("  a device provisioning during the attack", status, "ok", status == "ok"))
    out.append(row("  attack start to its success (host / emulated time)",
                   "%.1f / %d" % (took, world_took), "(figure)", True, "s"))
    out.append(row("  answers to the malformed requests",
                   ", ".join("%s: %d" % kv for kv in sorted(stats.items())
                             if kv[0] not in ("idle opened", "malformed sent")),
                   "(figure)", True))
    out.append(row("  idle connections opened / malformed requests sent",
                   "%d / %d" % (stats["idle opened"], stats["malformed sent"]), "(figure)", True))
    out.append(row("  tracebacks and MemoryErrors on the box's console",
                   stats["box tracebacks"] + stats["box MemoryErrors"], "0",
                   stats["box tracebacks"] + stats["box MemoryErrors"] == 0))
    wins, tries = dk_only_attacker()
    out.append(row("DK-only attacker: successes / attempts", "%d / %d" % (wins, tries), "0 / any",
                   wins == 0))
    return out
