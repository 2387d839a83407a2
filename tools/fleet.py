"""The operator's fleet CLI (docs/OPERATOR.md): `python -m tools.fleet COMMAND`.

The fleet file (fleet.cfgbox by default) is the box's store, packed: every secret in it is
sealed under the vault key, which is sealed under the admin passphrase (PBKDF2, as on the box).
It is the box's initial store (`flash-box` copies it) and its backup. Every long-term secret
comes from the host's CSPRNG (`secrets`).

The passphrase is asked for at the terminal, or read from CFGBOX_PASSPHRASE (for scripts such
as `make demo`): never from the command line, where shell history would keep it.
"""
import argparse
import base64
import csv
import getpass
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools" / "hostlib"), str(ROOT)]

from configurator_fw import vault  # noqa: E402
from configurator_fw.store import Store, StoreError, valid_id  # noqa: E402
from configurator_fw.store_devices import F_TAMPERED  # noqa: E402
from configurator_fw.vault import Vault  # noqa: E402
from shared import config as shared_config  # noqa: E402
from shared import otpauth, passphrase, protocol  # noqa: E402
from shared.board import Board  # noqa: E402
from tools.private import write_private as _write_private  # noqa: E402

FORMAT = "cfgbox-fleet/1"
DEFAULT_FILE = "fleet.cfgbox"


class CliError(Exception):
    """A clear message for the operator; exit status 2."""


class HostBoard(Board):
    """The seam's file functions on a host directory (the packed store); the host's CSPRNG."""

    def __init__(self, root):
        self.root = str(root)

    write_at = Board.write_at_copy  # a host filesystem: no copy-on-write

    def random(self, n):
        return secrets.token_bytes(n)


# -- the fleet file
def pack(root, path):
    files, dirs = {}, []
    for p in sorted(Path(root).rglob("*")):
        if p.is_dir():
            dirs.append(str(p.relative_to(root)))
        elif not p.name.endswith(".tmp"):
            files[str(p.relative_to(root))] = base64.b64encode(p.read_bytes()).decode()
    text = json.dumps({"format": FORMAT, "dirs": dirs, "files": files}, indent=0,
                      sort_keys=True)
    _write_private(path, text.encode())


def unpack(path, root):
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CliError("%s: no such fleet file (make one with `fleet init`)" % path) from None
    except (ValueError, UnicodeError):
        raise CliError("%s is corrupt: not a fleet file (restore it from a copy)" % path) \
            from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            not isinstance(data.get("files"), dict):
        raise CliError("%s is not a %s file" % (path, FORMAT))
    for name in list(data.get("dirs", [])) + list(data["files"]):
        if not isinstance(name, str) or ".." in Path(name).parts or Path(name).is_absolute():
            raise CliError("%s is corrupt: a file named %r" % (path, name))
    for name in data.get("dirs", []):
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
    for name, b64 in data["files"].items():
        p = Path(root) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            p.write_bytes(base64.b64decode(b64, validate=True))
        except (ValueError, TypeError):
            raise CliError("%s is corrupt: %s does not decode" % (path, name)) from None


def ask_passphrase(confirm=False):
    pw = os.environ.get("CFGBOX_PASSPHRASE")
    if pw:
        return pw
    if not sys.stdin.isatty():
        raise CliError("no passphrase: run at a terminal, or set CFGBOX_PASSPHRASE")
    pw = getpass.getpass("admin passphrase: ")
    if confirm and getpass.getpass("again: ") != pw:
        raise CliError("the two passphrases differ")
    return pw


def open_store(board, what):
    """The store under ``board`` opened with the passphrase, its box record verified."""
    try:
        key = vault.unwrap(board, ask_passphrase())
    except vault.WrongPassphrase:
        raise CliError("wrong passphrase for %s" % what) from None
    except vault.VaultError as e:
        raise CliError("%s is corrupt: %s" % (what, e)) from None
    try:
        store = Store(board, Vault(key))
    except (StoreError, ValueError) as e:
        raise CliError("%s is corrupt: %s" % (what, e)) from None
    if not store.ready:
        raise CliError("%s is corrupt: it holds no box" % what)
    return store


class Fleet:
    """The fleet file opened in a temporary directory; ``save()`` packs it back."""

    def __init__(self, path):
        self.path = Path(path)
        self.tmp = tempfile.TemporaryDirectory(prefix="cfgbox-fleet-")
        self.board = HostBoard(self.tmp.name)
        unpack(self.path, self.tmp.name)
        self.store = open_store(self.board, self.path)

    def save(self):
        pack(self.tmp.name, self.path)

    def bootstrap(self, dev):
        rec = self.store.device(dev)
        if rec is None:
            known = ", ".join(self.store.device_ids()) or "none"
            raise CliError("no device %s in %s (enrolled: %s)" % (dev, self.path, known))
        if rec["state"] == "revoked":
            raise CliError("%s is revoked: `fleet enroll %s` gives it new secrets" % (dev, dev))
        m = self.store.meta
        boot = {"dev": dev, "dk": protocol.device_key(self.store.master_key(), dev).hex(),
                "totp": self.store.totp_secret(dev).hex(), "ssid": m["ssid"],
                "psk": self.store.psk(), "box": m["box"]}
        if m["port"] != 80:
            boot["port"] = m["port"]
        return boot


# -- commands
def check_guessable(pw):
    """On top of the box's own estimate (shared/passphrase.py, which the box runs too): zxcvbn's
    dictionaries and keyboard graphs. Refused below its top score (10^10 guesses)."""
    from zxcvbn import zxcvbn

    r = zxcvbn(pw[:100])  # zxcvbn's cost grows with the length; 100 characters say enough
    if r["score"] < 4:
        why = r["feedback"]["warning"] or "a pattern zxcvbn knows"
        raise CliError("passphrase too guessable (zxcvbn, %d of 4): %s; use --generate, or a "
                       "longer one of unrelated words" % (r["score"], why.rstrip(".")))


def cmd_init(a):
    # what the store refuses, refused before the passphrase is asked for
    if not valid_id(a.box):
        raise CliError("--box %r: 1 to 32 letters, digits, '-' or '_'" % a.box)
    if not 1 <= a.port <= 65535:
        raise CliError("--port %d: give a TCP port, 1 to 65535" % a.port)
    if not 1 <= a.max_clients <= 10:
        raise CliError("--max-clients %d: 1 to 10 (8 on stock firmware)" % a.max_clients)
    path = Path(a.file)
    if path.exists() and not a.force:
        raise CliError("%s exists: it is a fleet's only backup; pass --force to replace it"
                       % path)
    pw = os.environ.get("CFGBOX_PASSPHRASE")
    generated = None
    if not pw and a.generate:
        pw = generated = passphrase.generate(secrets.token_bytes)
    elif not pw:
        pw = ask_passphrase(confirm=True)
    try:
        passphrase.check(pw)
    except passphrase.WeakPassphrase as e:
        raise CliError("passphrase %s" % e) from None
    check_guessable(pw)
    with tempfile.TemporaryDirectory(prefix="cfgbox-fleet-") as tmp:
        b = HostBoard(tmp)
        b.mkdir("store")
        key = secrets.token_bytes(32)
        vault.wrap(b, key, pw, a.iterations)
        s = Store(b, Vault(key))
        psk = secrets.token_urlsafe(18)
        lock_key = passphrase.generate(secrets.token_bytes)[:17]
        s.init(a.box, a.ssid, psk, a.max_clients, a.port, lock_key=lock_key)
        pack(tmp, path)
    print("fleet %s: box %s, written to %s (mode 600; keep a copy in a safe place)"
          % (a.box, a.ssid, path))
    print("sealed AP: %s, key %s (the admin page's network until you unlock)"
          % (a.ssid + "-locked", lock_key))
    if a.max_clients > 8:
        print("note: %d stations at once needs the box firmware of `make firmware` (DHCP pool "
              "of 10); stock MicroPython's softAP hands out 8 addresses" % a.max_clients)
    if generated:
        print("admin passphrase (shown once, write it down): %s" % generated)


def cmd_enroll(a):
    f = Fleet(a.file)
    for dev in a.device:  # several at once: one unlock, one save
        f.store.enroll(dev)
    f.save()
    for dev in a.device:
        print("enrolled %s; flash it with: make flash-client PORT=... DEVICE=%s" % (dev, dev))


def cmd_revoke(a):
    f = Fleet(a.file)
    rec = f.store.device(a.device)
    if rec is not None and rec["state"] == "revoked":
        print("%s was already revoked: nothing changed" % a.device)
        return
    f.store.revoke(a.device)
    f.save()
    print("revoked %s (flash the box again, or revoke it on the admin page, for a box already "
          "running)" % a.device)


def cmd_show(a):
    """What ``a.device`` receives: its defaults and overrides merged, the version, the size
    against the caps, secrets masked unless --reveal."""
    from configurator_fw.admin_web import mask
    from configurator_fw.store import json_sizes

    f = Fleet(a.file)
    rec = f.store.device(a.device)
    if rec is None:
        raise CliError("no device %s in %s" % (a.device, a.file))
    ver, raw = f.store.config(a.device)
    cfg = json.loads(raw)
    n, size = json_sizes(cfg, 0)
    print("%s (%s) receives version %d: %d bytes of JSON (cap %d), %d as records (cap %d)"
          % (a.device, rec["state"], ver, n, protocol.MAX_CONFIG, size, protocol.MAX_RECORDS))
    print(json.dumps(cfg if a.reveal else mask(cfg), indent=2, sort_keys=True))


def cmd_list(a):
    f = Fleet(a.file)
    m = f.store.meta
    print("box %s  AP %s (sealed: %s, key %s)  port %d  config version %d"
          % (m["box"], m["ssid"], m["lock_ssid"], m["lock_key"], m["port"],
             f.store.verified_defaults_rev()))
    rows = [(dev, rec["state"], rec["ack"], f.store.version(dev, rec))
            for dev, rec in sorted(f.store.devices())]
    print("%-32s %-12s %s" % ("device", "state", "stored/current"))
    for dev, state, ack, ver in rows:
        print("%-32s %-12s %s/%d" % (dev, state, ack or "-", ver))
    print("%d devices" % len(rows))


def cmd_qr(a):
    import qrcode

    f = Fleet(a.file)
    boot = f.bootstrap(a.device)
    uri = otpauth.build_uri(bytes.fromhex(boot["totp"]), a.device, boot["box"])
    q = qrcode.QRCode(border=2)
    q.add_data(uri)
    q.print_ascii(invert=True)
    print(uri)


def cmd_defaults(a):
    f = Fleet(a.file)
    try:
        text = sys.stdin.read() if a.json == "-" else Path(a.json).read_text()
        obj = json.loads(text)
    except (OSError, ValueError) as e:
        raise CliError("%s: %s" % (a.json, e)) from None
    if isinstance(obj, dict):
        for key in obj:
            known = shared_config.near_miss(key)
            if known and key not in a.app_section:
                raise CliError("top-level %r looks like %r misspelt: fix it, or pass "
                               "--app-section %s if it is your application's own" % (
                                   key, known, key))
    if a.device:
        f.store.set_overrides(a.device, obj)
    else:
        f.store.set_defaults(obj)
    f.save()
    print("%s now at version %d" % ("overrides of " + a.device if a.device else "defaults",
                                    f.store.version(a.device) if a.device
                                    else f.store.verified_defaults_rev()))


def cmd_broker(a):
    from tools.broker import Broker, BrokerError

    b = Broker(a.dir)
    f = Fleet(a.file)
    try:
        if not b.exists():
            if not a.host:
                raise CliError("%s holds no broker yet: give --host, the name devices reach "
                               "the broker by" % a.dir)
            b.create(a.host, a.mqtt_port, a.bind)
        s = b.settings
        defaults = f.store.defaults()
        mqtt = dict(defaults.get("mqtt", {}), host=s["host"], port=s["port"], tls=True,
                    ca=b.ca_pem())
        if mqtt != defaults.get("mqtt"):
            f.store.set_defaults(dict(defaults, mqtt=mqtt))
        passwords = {}
        changed = 0
        for dev, rec in sorted(f.store.devices()):
            if rec["state"] == "revoked":
                continue  # left out of the password file: the broker refuses it
            over = f.store.overrides(dev)
            m = dict(over.get("mqtt", {}))
            if a.rotate or m.get("user") != dev or not m.get("password"):
                m.update(user=dev, password=secrets.token_urlsafe(24))
            if a.client_certs and (a.rotate or "cert" not in m):
                m["cert"], m["key"] = b.client_cert(dev)
            if m != over.get("mqtt"):
                f.store.set_overrides(dev, dict(over, mqtt=m))
                changed += 1
            passwords[dev] = m["password"]
        b.write(passwords, a.client_certs)
    except BrokerError as e:
        raise CliError(str(e)) from None
    f.save()
    print("broker %s:%d: %d device credentials (%d new), in %s; run it with: mosquitto -c %s"
          % (s["host"], s["port"], len(passwords), changed, a.dir, b.path("mosquitto.conf")))


def _mpremote(port, *args):
    return [sys.executable, "-m", "mpremote", "connect", port, *args]


def _check_port(a):
    if not a.port:
        raise CliError("no serial port: give PORT=, e.g. make %s PORT=/dev/ttyUSB0" % a.cmd)
    if not a.dry_run and not os.path.exists(a.port):
        raise CliError("%s: no such serial port (is the board plugged in?)" % a.port)


def _bundle(name):
    d = ROOT / "build" / name
    if not d.is_dir():
        raise CliError("build/%s is missing: run make build" % name)
    return d


def _copy_cmds(port, local_root):
    """One mpremote command copying what is under ``local_root`` to the board's root: each
    folder with `fs cp -r` (folders that exist are kept), each file with `fs cp`."""
    cp = []
    for p in sorted(Path(local_root).iterdir()):
        cp += (["fs", "cp", "-r", str(p), ":"] if p.is_dir() else
               ["fs", "cp", str(p), ":" + p.name]) + ["+"]
    return [_mpremote(port, *cp[:-1])] if cp else []


_WIPE = """# run once over mpremote before the store is copied: no store and no auto-unseal key
# of an earlier fleet may remain
import os
def rm(p):
    try:
        if os.stat(p)[0] & 0x4000:
            for e in os.listdir(p):
                rm(p + "/" + e)
            os.rmdir(p)
        else:
            os.remove(p)
    except OSError:
        pass
rm("store")
try:
    import esp32
    n = esp32.NVS("cfgvault")
    n.erase_key("auto")
    n.commit()
except OSError:
    pass
print("old store removed")
"""


def _session(cmds):
    """The commands as one mpremote session (one connection, steps chained with +): a board is
    never left half-deployed between two connections."""
    head = cmds[0][:5]  # python -m mpremote connect PORT
    out = list(head)
    for c in cmds:
        out += c[5:] + ["+"]
    return [out[:-1]]


def _run(cmds, dry_run):
    for c in _session(cmds):
        shown = " ".join(shlex.quote(x) for x in c)
        if dry_run:
            print(shown)
            continue
        print("+ " + shown, flush=True)
        r = subprocess.run(c)
        if r.returncode:
            raise CliError("mpremote failed (exit %d): %s" % (r.returncode, shown))


_PROBE = ("import sys\nsys.path[:] = ['.frozen']\ntry:\n    import configurator_fw\n"
          "    print('FIRMWARE frozen')\nexcept ImportError:\n    print('FIRMWARE plain')\n")


def _esptool(port, *args):
    return [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", port, *args]


def _firmware(a):
    """FIRMWARE=path: the MicroPython image, checked with esptool on the host first (an image
    esptool cannot read is refused before the board is touched), written at 0x1000 (the ESP32's
    bootloader offset in MicroPython's images); esptool checks the chip is an ESP32."""
    if not a.firmware:
        return []
    if not os.path.exists(a.firmware):
        raise CliError("%s: no such firmware image" % a.firmware)
    r = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "image-info",
                        a.firmware], capture_output=True, text=True)
    if r.returncode:
        raise CliError("%s is not an ESP32 image esptool can read: %s" % (
            a.firmware, (r.stderr or r.stdout).strip().splitlines()[-1:]))
    return [_esptool(a.port, "write-flash", "-z", "0x1000", a.firmware)]


def _run_all(pre, cmds, dry_run):
    for c in pre:
        shown = " ".join(shlex.quote(x) for x in c)
        print(shown if dry_run else "+ " + shown, flush=True)
        if not dry_run and subprocess.run(c).returncode:
            raise CliError("esptool failed: %s" % shown)
    if cmds:
        _run(cmds, dry_run)


def _is_frozen(a):
    """Whether the board's firmware has the box frozen in (then only main.py is copied)."""
    if a.frozen != "auto" or a.dry_run:
        return a.frozen == "yes"
    r = subprocess.run(_mpremote(a.port, "exec", _PROBE), capture_output=True, text=True)
    if r.returncode or "FIRMWARE" not in r.stdout:
        raise CliError("the board does not answer on %s: %s" % (a.port, r.stderr.strip()))
    return "FIRMWARE frozen" in r.stdout


def _staging(a, name):
    """Where a command's files go: a temporary folder removed after the run, or with
    --dry-run a folder kept beside the fleet file (dry-run/NAME, mode 700), so that the
    printed commands can be run as they are."""
    if not a.dry_run:
        return Path(tempfile.mkdtemp(prefix="cfgbox-%s-" % name)), True
    root = Path(a.file).resolve().parent / "dry-run"
    root.mkdir(exist_ok=True)
    root.chmod(0o700)
    d = root / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    return d, False


def cmd_flash_box(a):
    _check_port(a)
    bundle = _bundle("configurator")
    pre = _firmware(a)
    stage, temporary = _staging(a, "flash-box")
    store_dir = stage / "store"
    unpack(a.file, store_dir)  # the sealed store as it is: no passphrase needed to copy it
    try:
        if not (store_dir / "store" / "box.json").exists():
            raise CliError("%s is corrupt: it holds no box" % a.file)
        wipe = stage / "wipe.py"
        wipe.write_text(_WIPE)
        if pre and not a.dry_run:
            _run_all(pre, [], False)
            pre = []
        if _is_frozen(a):
            top = stage / "top"
            top.mkdir()
            for f in bundle.glob("*.py"):  # main.py (boot.py): the rest is in the firmware
                (top / f.name).write_bytes(f.read_bytes())
            cmds = _copy_cmds(a.port, top)
        else:
            cmds = _copy_cmds(a.port, bundle)
        cmds += [_mpremote(a.port, "run", str(wipe))]
        cmds += _copy_cmds(a.port, store_dir) + [_mpremote(a.port, "reset")]
        _run_all(pre, cmds, a.dry_run)
    finally:
        if temporary:
            shutil.rmtree(stage, ignore_errors=True)
    if a.dry_run:
        print("# the files these commands copy are in %s (the sealed store: no secret in "
              "clear); remove it when done" % stage)
    else:
        print("box flashed: it starts sealed; join its -locked AP and unlock on /admin")


def adopt(pulled, path, force=False):
    """The store pulled from a box (``pulled``/store, as `fs cp -r :store` copies it) becomes
    the fleet file ``path``, once it opens with the passphrase and every record verifies; the
    file it replaces is kept as PATH.bak. A store of another box needs ``force``."""
    board = HostBoard(pulled)
    meta = Store.peek(board)
    if meta is None:
        raise CliError("the board holds no box store (flash one with make flash-box)")
    path = Path(path)
    mine = None
    if path.exists():
        with tempfile.TemporaryDirectory(prefix="cfgbox-fleet-") as tmp:
            unpack(path, tmp)
            mine = Store.peek(HostBoard(tmp)) or {}
        if mine.get("box") != meta.get("box"):
            if not force:
                raise CliError("the board holds box %s, %s is box %s: pass --force to replace "
                               "it" % (meta.get("box"), path, mine.get("box")))
            mine = None
    if mine and meta.get("srev", 0) < mine.get("srev", 0) and not force:
        raise CliError("the box's store is state %d, older than %s's %d: the box was put "
                       "back from an older backup, or the file holds changes not flashed yet "
                       "(`fleet diff --port` lists them; `make flash-box` sends them); --force "
                       "takes the box's as it is" % (meta.get("srev", 0), path, mine["srev"]))
    store = open_store(board, "the board's store")
    states = [rec["state"] for _, rec in store.devices()]  # every record read, MACs checked
    # and every record against box.json's revocations (a record put back reads as tampered)
    bad = states.count("tampered") + sum(
        1 for s in range(store.recs.used) if store.recs.flags[s] & F_TAMPERED
        and store.recs.flags[s] & 3)
    if bad:
        raise CliError("the board's store has %d device records that fail their checks: not "
                       "taken (the fleet file is unchanged)" % bad)
    carried = []
    for slot in (mine or {}).get("revoked", ()):  # revocations both ways: the file's too
        if slot in store._revoked() or slot >= store.recs.used:
            continue
        if store._gen(slot) > (mine.get("gen") or {}).get(str(slot), 0):
            continue  # enrolled again on the box after the file revoked it: the box's is newer
        dev = store._name_of(slot)
        if dev:
            store.revoke(dev)
            carried.append(dev)
    n = len(states)
    rev = store.verified_defaults_rev()
    bak = ""
    if path.exists():
        bak = str(path) + ".bak"
        _write_private(bak, path.read_bytes())
    pack(pulled, path)
    print("pulled box %s: %d devices, config version %d; written to %s%s" % (
        meta["box"], n, rev, path, " (the file it replaces: %s)" % bak if bak else ""))
    if carried:
        print("revoked in the fleet file, not yet on the box, and kept revoked: %s (the box "
              "serves them until `make flash-box`, or revoke them on the admin page)"
              % ", ".join(carried))


def _summary(store):
    """What the operator compares: each device's state and overrides, the defaults' revision
    and content."""
    devs = {dev: (rec["state"], store.overrides(dev) if
                  rec["state"] not in ("revoked", "tampered") else None)
            for dev, rec in store.devices(False)}
    return {"rev": store.verified_defaults_rev(), "defaults": store.defaults(), "devices": devs}


def diff_stores(mine, theirs):
    """Lines saying how store ``theirs`` (a box's) differs from ``mine`` (the fleet file's)."""
    a, b = _summary(mine), _summary(theirs)
    out = []
    if a["defaults"] != b["defaults"] or a["rev"] != b["rev"]:
        out.append("defaults: file at revision %d, box at %d%s" % (
            a["rev"], b["rev"], "" if a["defaults"] != b["defaults"] else " (same content)"))
    for dev in sorted(set(a["devices"]) | set(b["devices"])):
        x, y = a["devices"].get(dev), b["devices"].get(dev)
        if x is None:
            out.append("%s: only on the box (%s)" % (dev, y[0]))
        elif y is None:
            out.append("%s: only in the file (%s)" % (dev, x[0]))
        else:
            if (x[0] == "revoked") != (y[0] == "revoked"):
                out.append("%s: revoked %s" % (dev, "on the box" if y[0] == "revoked"
                                               else "in the file"))
            if x[1] != y[1] and "revoked" not in (x[0], y[0]):
                out.append("%s: overrides differ" % dev)
    return out


def cmd_diff(a):
    """The fleet file against a box's store: pulled from the board (--port, as pull does,
    without taking it), or a copy already pulled (--from DIR, holding store/)."""
    f = Fleet(a.file)
    if a.source:
        other = open_store(HostBoard(a.source), "the store in %s" % a.source)
        lines = diff_stores(f.store, other)
    else:
        _check_port(a)
        with tempfile.TemporaryDirectory(prefix="cfgbox-diff-") as tmp:
            _run([_mpremote(a.port, "fs", "cp", "-r", ":store", tmp + "/"),
                  _mpremote(a.port, "reset")], a.dry_run)
            if a.dry_run:
                return
            lines = diff_stores(f.store, open_store(HostBoard(tmp), "the board's store"))
    if not lines:
        print("the box's store and %s agree" % a.file)
        return
    for line in lines:
        print(line)
    print("%d difference%s: `fleet pull` takes the box's store into the file; `make flash-box` "
          "puts the file's on the box" % (len(lines), "" if len(lines) == 1 else "s"))


def cmd_pull(a):
    _check_port(a)
    with tempfile.TemporaryDirectory(prefix="cfgbox-pull-") as tmp:
        # mpremote stops the box's program first (a write in flight ends whole or not at all:
        # every store write is a rename); the reset starts it again, sealed
        _run([_mpremote(a.port, "fs", "cp", "-r", ":store", tmp + "/"),
              _mpremote(a.port, "reset")], a.dry_run)
        if not a.dry_run:
            adopt(tmp, a.file, a.force)


_ONESHOT = """# one-shot bootstrap for {dev}: runs once over mpremote, never stored on the board
from client_fw.bootstrap import write as write_bootstrap
from shared.board import Board
write_bootstrap(Board(), {boot!r})
print("bootstrap written for {dev}")
"""


def cmd_flash_client(a):
    _check_port(a)
    if not a.device:
        raise CliError("no device: give DEVICE=, e.g. make flash-client PORT=... DEVICE=sensor-1")
    bundle = _bundle("client")
    app = _bundle("app") if a.app else None
    f = Fleet(a.file)
    boot = f.bootstrap(a.device)
    pre = _firmware(a)
    if a.method == "nvs":
        # the bootstrap as an NVS partition image (esp-idf-nvs-partition-gen) written with
        # esptool at the port's NVS offset; it stays in nvs-images/ beside the fleet file (mode
        # 600: it holds the device's secrets) so the printed commands can be run again
        from tools import nvsimage

        out = Path(a.file).resolve().parent / "nvs-images"
        out.mkdir(parents=True, exist_ok=True)
        out.chmod(0o700)
        img = nvsimage.make(boot, out / ("%s-nvs.bin" % a.device))
        pre.append(_esptool(a.port, "write-flash", "0x%x" % nvsimage.NVS_OFFSET, str(img)))
        copy = _copy_cmds(a.port, bundle) + (_copy_cmds(a.port, app) if app else [])
        _run_all(pre, copy + [_mpremote(a.port, "reset")], a.dry_run)
        if a.dry_run:
            print("# %s holds %s's secrets (mode 600): remove it once the board is flashed"
                  % (img, a.device))
        return
    # the secrets go through a file only this user can read, removed at once: never argv.
    # With --dry-run it is kept (mode 600) so that the printed commands can be run
    stage, temporary = _staging(a, "flash-client-" + a.device)
    script = stage / "bootstrap.py"
    try:
        _write_private(str(script), _ONESHOT.format(dev=a.device, boot=boot).encode())
        cmds = _copy_cmds(a.port, bundle) + (_copy_cmds(a.port, app) if app else [])
        cmds.append(_mpremote(a.port, "run", str(script)))
        cmds.append(_mpremote(a.port, "reset"))
        _run_all(pre, cmds, a.dry_run)
        if a.dry_run:
            print("# %s holds %s's secrets (mode 600): remove it once the board is flashed"
                  % (script, a.device))
    finally:
        if temporary:
            shutil.rmtree(stage, ignore_errors=True)


def cmd_nvs_image(a):
    """Each device's bootstrap as an NVS partition image (esp-idf-nvs-partition-gen), to be
    written at 0x9000 with esptool: the secrets never pass through a REPL or a command line."""
    from tools import nvsimage

    f = Fleet(a.file)
    devs = list(a.device)
    if a.batch:
        with open(a.batch, newline="") as src:
            devs += [row[0].strip() for row in csv.reader(src)
                     if row and row[0].strip() and not row[0].startswith("#")]
    if not devs:
        raise CliError("no device: give device ids or --batch FILE.csv (one id per line)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    for dev in devs:
        boot = f.bootstrap(dev)
        img = out / ("%s-nvs.bin" % dev)
        keys = out / ("%s-nvs-keys.bin" % dev) if a.encrypt else None
        nvsimage.make(boot, img, keys)
        print("%s: %s%s" % (dev, img, " (encrypted; its key: %s)" % keys if keys else ""))
    print("write each with: esptool --chip esp32 --port PORT write-flash 0x%x DEVICE-nvs.bin "
          "(or make flash-client METHOD=nvs)" % nvsimage.NVS_OFFSET)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.fleet", description=__doc__.split("\n")[0])
    p.add_argument("--file", default=os.environ.get("FLEET", DEFAULT_FILE),
                   help="the fleet file (default %(default)s, or $FLEET)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("init", help="a new fleet: master key, AP, admin passphrase")
    s.add_argument("--box", required=True, help="the box's id, e.g. cfgbox-plant1")
    s.add_argument("--ssid", required=True, help="the fleet AP's name (1-25 bytes)")
    s.add_argument("--max-clients", type=int, default=8,
                   help="stations at once (default 8, stock MicroPython's DHCP pool; up to 10 "
                        "only with the firmware of `make firmware`)")
    s.add_argument("--port", type=int, default=80)
    s.add_argument("--generate", action="store_true", help="generate the admin passphrase")
    s.add_argument("--force", action="store_true", help="replace an existing fleet file")
    s.add_argument("--iterations", type=int, default=vault.ITERATIONS, help=argparse.SUPPRESS)
    for name, helptext in (("enroll", "enrol a device"), ("revoke", "revoke a device"),
                           ("qr", "the device's otpauth URI as a terminal QR code")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("device", nargs="+" if name == "enroll" else None,
                       help="device ids (several for enroll)" if name == "enroll" else None)
    sub.add_parser("list", help="the box and its devices")
    s = sub.add_parser("show", help="the config a device receives (merged, secrets masked)")
    s.add_argument("device")
    s.add_argument("--reveal", action="store_true", help="show the secrets too")
    s = sub.add_parser("set-config", help="set the defaults (or a device's overrides) from JSON")
    s.add_argument("json", help="a JSON file, or - for stdin")
    s.add_argument("--device")
    s.add_argument("--app-section", action="append", default=[], metavar="KEY",
                   help="a top-level key that is the application's own although it looks like "
                        "a known one misspelt (e.g. a section named 'wiki')")
    s = sub.add_parser("broker", help="the MQTT broker's CA, certificate, device credentials and "
                       "mosquitto configuration; each device's part goes into its config")
    s.add_argument("--dir", default="broker", help="where the broker's files go (mode 700)")
    s.add_argument("--host", help="the name devices reach the broker by (first time only)")
    s.add_argument("--mqtt-port", type=int, default=8883)
    s.add_argument("--bind", default="0.0.0.0", help="the address the broker listens on")
    s.add_argument("--rotate", action="store_true", help="new credentials for every device")
    s.add_argument("--client-certs", action="store_true",
                   help="devices authenticate with a client certificate (CN = the device id)")
    s = sub.add_parser("nvs-image", help="devices' bootstraps as NVS partition images")
    s.add_argument("device", nargs="*", help="device ids")
    s.add_argument("--batch", help="a CSV file whose first column lists device ids")
    s.add_argument("--out", default="nvs-images", help="where the images go (mode 700)")
    s.add_argument("--encrypt", action="store_true",
                   help="NVS encryption (boards with flash encryption and an nvs_keys partition)")
    s = sub.add_parser("diff", help="the fleet file against a box's store (--port or --from)")
    s.add_argument("--port", default=os.environ.get("PORT", ""))
    s.add_argument("--from", dest="source", help="a store already pulled (a folder with store/)")
    s.add_argument("--dry-run", action="store_true", default=bool(os.environ.get("DRY_RUN")))
    for name in ("flash-box", "flash-client", "pull"):
        s = sub.add_parser(name, help="the box's store back into the fleet file, with mpremote"
                           if name == "pull" else "copy to a board with mpremote")
        s.add_argument("--port", default=os.environ.get("PORT", ""))
        s.add_argument("--dry-run", action="store_true", default=bool(os.environ.get("DRY_RUN")),
                       help="print the commands only")
        if name != "pull":
            s.add_argument("--firmware", default=os.environ.get("FIRMWARE", ""),
                           help="a MicroPython image to write first with esptool")
        if name == "flash-box":
            s.add_argument("--frozen", choices=("auto", "yes", "no"), default="auto",
                           help="the box frozen in the board's firmware (auto: ask the board)")
        if name == "flash-client":
            s.add_argument("--device", default=os.environ.get("DEVICE", ""))
            s.add_argument("--method", choices=("repl", "nvs"),
                           default=os.environ.get("METHOD") or "repl",
                           help="bootstrap by a one-shot script (repl) or an NVS image (nvs)")
            s.add_argument("--app", action="store_true", default=bool(os.environ.get("APP")),
                           help="the reference application too (build/app: app.py, MQTT)")

        if name == "pull":
            s.add_argument("--force", action="store_true", help="even from another box")
    a = p.parse_args(argv)
    fn = {"init": cmd_init, "enroll": cmd_enroll, "revoke": cmd_revoke, "list": cmd_list,
          "qr": cmd_qr, "show": cmd_show, "set-config": cmd_defaults, "flash-box": cmd_flash_box,
          "flash-client": cmd_flash_client, "pull": cmd_pull, "diff": cmd_diff,
          "nvs-image": cmd_nvs_image,
          "broker": cmd_broker}[a.cmd]
    try:
        fn(a)
    except (CliError, StoreError) as e:  # the store's refusals say what to do, too
        print("fleet: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
