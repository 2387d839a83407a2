# The device's bootstrap secrets in NVS namespace 'cfgbox' (docs/PROTOCOL.md s.1): read by the
# provisioning exchange and by the application's config reader, written once at commissioning.
import hashlib
import json
import struct

from shared import protocol

NS = "cfgbox"
NOT_BOOTSTRAPPED = "no bootstrap secrets in NVS"
APP_ERROR = "apperr"  # the application's last error, reported to the box at the next check
_MAX_ERROR = 64


class Missing(Exception):
    """No (or incomplete) bootstrap secrets in NVS: the device was never commissioned."""


BOOT = "boot"  # the bootstrap, one blob: a single NVS set is whole or absent after a power cut
RUN = "run"  # gen (4 B) | ctr (i32) | vmax (i32): what the exchanges recorded under that bootstrap
SALT = "salt"  # 16 random bytes of the device's own: the storage key's input besides unique_id
_FIELDS = ("dev", "dk", "totp", "ssid", "psk", "box")


def _gen(boot):
    # the bootstrap's generation: a digest of who the device is and its secrets, so that the
    # counters of other secrets never apply (a new AP key or port keeps them)
    h = hashlib.sha256()
    for key in ("dev", "box", "dk", "totp"):
        h.update((boot[key] + "\n").encode())
    return h.digest()[:4]


def encode(boot):
    """The NVS blob of a bootstrap dict (as the box's enroll prints it): compact JSON, the keys
    sorted, as fleet nvs-image also writes it."""
    for key in _FIELDS:
        if key not in boot:
            raise ValueError("bootstrap without " + key)
    keep = {k: boot[k] for k in _FIELDS + ("host", "port") if k in boot}
    return json.dumps(keep, separators=(",", ":")).encode()  # MicroPython: no sort_keys


def read(board):
    """The bootstrap secrets as a dict, K derived; raises Missing."""
    nvs = board.nvs(NS)
    buf = bytearray(400)
    try:
        blob = bytes(buf[: nvs.get_blob(BOOT, buf)])
        out = json.loads(blob)
        gen = _gen(out)
        out["dk"], out["totp"] = bytes.fromhex(out["dk"]), bytes.fromhex(out["totp"])
    except (OSError, ValueError, KeyError, TypeError):
        raise Missing(NOT_BOOTSTRAPPED) from None
    out.setdefault("port", 80)
    out["gen"] = gen
    # ctr: the last TOTP step the box accepted from us; vmax: the highest version stored
    out["ctr"], out["vmax"] = -1, 0
    run = bytearray(12)
    try:
        if nvs.get_blob(RUN, run) == 12 and bytes(run[:4]) == out["gen"]:
            out["ctr"], out["vmax"] = struct.unpack("<ii", run[4:])
    except OSError:
        pass
    out["k"] = protocol.long_term_key(out["dk"], out["totp"])
    return out


def record(board, boot, ctr=None, vmax=None):
    """Record the step the box accepted and/or the highest version stored, in one NVS write."""
    if ctr is not None:
        boot["ctr"] = ctr
    if vmax is not None:
        boot["vmax"] = vmax
    board.nvs(NS).set_blob(RUN, boot["gen"] + struct.pack("<ii", boot["ctr"], boot["vmax"]))


def write(board, boot):
    """Store bootstrap secrets (a dict as the box's enroll prints) in NVS, at commissioning: one
    blob, so that a power cut leaves the old bootstrap or the new one, never a mix."""
    board.nvs(NS).set_blob(BOOT, encode(boot))


def salt(board, create=False):
    """The device's storage salt (16 B), made at its first stored config (WiFi is up then, so
    os.urandom is truly random); None if there is none yet."""
    nvs = board.nvs(NS)
    buf = bytearray(16)
    try:
        if nvs.get_blob(SALT, buf) == 16:
            return bytes(buf)
    except OSError:
        pass
    if not create:
        return None
    s = board.random(16)
    nvs.set_blob(SALT, s)
    return s


def app_error(board):
    """The error the application recorded (text), or None."""
    buf = bytearray(4 * _MAX_ERROR)  # UTF-8: up to 4 bytes a character
    try:
        n = board.nvs(NS).get_blob(APP_ERROR, buf)
    except OSError:
        return None
    return bytes(buf[:n]).decode() if n else None


def set_app_error(board, text):
    """Record (``text``) or clear (None) the application's error; written only on a change, as
    NVS wears with every write."""
    text = text[:_MAX_ERROR] if text else None
    if app_error(board) == text:
        return
    nvs = board.nvs(NS)
    if text:
        nvs.set_blob(APP_ERROR, text.encode())
    else:
        nvs.erase_key(APP_ERROR)
