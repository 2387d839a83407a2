# The device's bootstrap secrets in NVS namespace 'cfgbox' (docs/PROTOCOL.md s.1): read by the
# provisioning exchange and by the application's config reader, written once at commissioning.
from shared import protocol

NS = "cfgbox"
NOT_BOOTSTRAPPED = "no bootstrap secrets in NVS"
APP_ERROR = "apperr"  # the application's last error, reported to the box at the next check
_MAX_ERROR = 64


class Missing(Exception):
    """No (or incomplete) bootstrap secrets in NVS: the device was never commissioned."""


def read(board):
    """The bootstrap secrets as a dict, K derived; raises Missing."""
    nvs = board.nvs(NS)
    buf = bytearray(80)
    out = {}
    for key in ("dev", "dk", "totp", "ssid", "psk", "box", "host"):
        try:
            out[key] = bytes(buf[: nvs.get_blob(key, buf)])
        except OSError:
            if key != "host":
                raise Missing(NOT_BOOTSTRAPPED) from None
    for key, default in (("port", 80), ("ctr", -1), ("vmax", 0)):
        # ctr: the last TOTP step the box accepted from us; vmax: the highest version stored
        try:
            out[key] = nvs.get_i32(key)
        except OSError:
            out[key] = default
    for key in ("dev", "ssid", "psk", "box", "host"):
        if key in out:
            out[key] = out[key].decode()
    out["k"] = protocol.long_term_key(out["dk"], out["totp"])
    return out


def write(board, boot):
    """Store bootstrap secrets (a dict as the box's enroll prints) in NVS, at commissioning."""
    nvs = board.nvs(NS)
    for key in ("dev", "ssid", "psk", "box", "host"):
        if key in boot:
            nvs.set_blob(key, boot[key].encode())
    for key in ("dk", "totp"):
        nvs.set_blob(key, bytes.fromhex(boot[key]))
    if "port" in boot:
        nvs.set_i32("port", boot["port"])
    nvs.commit()


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
    nvs.commit()
