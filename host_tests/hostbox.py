# Test harness: the box's pure parts under CPython (store on a temp dir, device API) and a small
# CPython device speaking docs/PROTOCOL.md to it. Not firmware: never copied to a board.
import hashlib
import json
import os
from pathlib import Path

from configurator_fw.api import DeviceApi
from configurator_fw.store import Store, _bytes_source
from configurator_fw.vault import Vault
from shared import otp, protocol, records
from shared.board import Board
from shared.sealedbox import SealKey

HELLO, AUTH, CONFIG, ACK = protocol.HELLO, protocol.AUTH, protocol.CONFIG, protocol.ACK
V = protocol.VERSION
T0 = 1795219200  # a fixed "now" (2026-11-21 00:00 UTC) on a TOTP step boundary


class FsBoard(Board):
    """The seam's file functions on a host directory; no radio, no NVS. Secrets come from the
    host's CSPRNG (the harness's boards bring up their radio first, as a real box does)."""

    def __init__(self, root):
        self.root = str(root)

    write_at = Board.write_at_copy  # a host filesystem: no copy-on-write

    def random(self, n):
        return os.urandom(n)


def new_store(root, devices=()):
    store = Store(FsBoard(root), Vault(b"v" * 32))
    store.init("cfgbox-test", "cfgbox", "passphrase 1")
    boot = {dev: store.enroll(dev) for dev in devices}
    return store, boot


def reopen(store):
    """The store as a rebooted box sees it: everything from the files."""
    return Store(FsBoard(store.b.root), Vault(b"v" * 32))


def snapshot(root):
    """Every file under ``root`` and a hash of its contents: to show nothing changed."""
    root = Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class HostDevice:
    """One device's side of the exchange, in CPython, with every request kept for replays."""

    def __init__(self, api, boot, station="127.0.4.2"):
        self.api = api
        self.dev = boot["dev"]
        self.dk = boot["dk"]
        self.totp = boot["totp"]
        self.k = protocol.long_term_key(self.dk, self.totp)
        self.box = api.store.meta["box"]
        self.station = station
        self.sent = {}

    def post(self, path, body, now):
        self.sent[path] = body
        return self.api.handle(path, body, self.station, now)

    def hello(self, now):
        self.cn = os.urandom(protocol.NONCE_LEN)
        s, out, _ = self.post(HELLO, {"v": V, "dev": self.dev, "cn": self.cn.hex()}, now)
        assert s == 200, out
        self.sn = bytes.fromhex(out["sn"])
        assert protocol.mac_ok(self.k, out["bp"], "cfgbox/2 box", self.box, self.dev, self.cn,
                               self.sn, out["t"]), "box not authentic"
        return out

    def auth(self, now, step=None, dk=None, totp=None):
        """auth at time step ``step`` (now's by default), optionally with a wrong DK or T."""
        step = otp.counter_at(now) if step is None else step
        k = protocol.long_term_key(dk or self.dk, totp or self.totp)
        code = protocol.code(totp or self.totp, step)
        self.sk = protocol.session_key(k, self.cn, self.sn, self.box, self.dev, step, code)
        dp = protocol.mac(self.sk, "cfgbox/2 dev", self.box, self.dev, self.cn, self.sn, step)
        s, out, h = self.post(AUTH, {"v": V, "dev": self.dev, "cn": self.cn.hex(),
                                     "sn": self.sn.hex(), "c": step, "dp": dp.hex()}, now)
        if s == 200:
            self.sid = bytes.fromhex(out["sid"])
            assert protocol.mac_ok(self.sk, out["ap"], "cfgbox/2 auth-ok", self.sid, self.dev,
                                   step)
        return s, out, h

    def config(self, now, have=0):
        m = protocol.mac(self.sk, "cfgbox/2 config", self.sid, have)
        s, out, _ = self.post(CONFIG, {"v": V, "sid": self.sid.hex(), "have": have,
                                       "m": m.hex()}, now)
        if s == 200 and not isinstance(out, dict):  # the streamed answer: ver, then sealed
            body = b"".join(bytes(c) for c in out) if not isinstance(out, bytes) else out
            ver = int.from_bytes(body[:4], "big")
            aad = protocol.tr("cfgbox/2 cfg", self.sid, self.dev, ver)
            plain = bytes(SealKey(self.sk).open(body[4:], aad))
            cfg = records.unflatten(records.RecordReader(source(plain)))
            out = {"v": V, "ver": ver, "plain": json.dumps(cfg).encode(), "records": plain,
                   "sealed": body[4:]}
        return s, out

    def ack(self, now, ver, st='{"fw":"host"}'):
        m = protocol.mac(self.sk, "cfgbox/2 ack", self.sid, ver, st)
        s, out, _ = self.post(ACK, {"v": V, "sid": self.sid.hex(), "ver": ver, "st": st,
                                    "m": m.hex()}, now)
        return s, out

    def exchange(self, now, have=0):
        """hello, auth, config, ack: returns (version, config bytes or None if unchanged)."""
        self.hello(now)
        s, out, _ = self.auth(now)
        assert s == 200, out
        s, out = self.config(now, have)
        assert s == 200, out
        assert self.ack(now, out["ver"])[0] == 200
        return out["ver"], out.get("plain")


source = _bytes_source  # ``readinto`` over bytes, as the box reads small sealed streams


def new_api(root, devices=(), clock_ok=True):
    store, boot = new_store(root, devices)
    return DeviceApi(store, clock_ok), boot
