# Protocol v1 (docs/PROTOCOL.md): transcript encoding and key derivations both ends share.
import hashlib

from shared.ct import equal
from shared.hkdf import hkdf
from shared.mac import hmac_parts

VERSION = 1
NONCE_LEN = 16
MAX_CONFIG = 16384  # bytes of config JSON
MAX_RECORDS = 32768  # bytes of a config's record stream (PROTOCOL.md s.3)
TOTP_DIGITS = 6
HELLO = "/api/v1/hello"
AUTH = "/api/v1/auth"
CONFIG = "/api/v1/config"
ACK = "/api/v1/ack"


def _b(x):
    if isinstance(x, int):
        return x.to_bytes(8, "big")
    if isinstance(x, str):
        return x.encode()
    return x


def tr_parts(label, fields):
    """The transcript TR(label, fields...) as a list of parts (see PROTOCOL.md notation)."""
    parts = [label.encode()]
    for f in fields:
        f = _b(f)
        parts.append(len(f).to_bytes(2, "big"))
        parts.append(f)
    return parts


def tr(label, *fields):
    """TR(label, fields...) as bytes."""
    return b"".join(tr_parts(label, fields))


def mac(key, label, *fields):
    """HMAC-SHA256(key, TR(label, fields...))."""
    return hmac_parts(hashlib.sha256, key, tr_parts(label, fields))


def mac_ok(key, tag_hex, label, *fields):
    """Constant-time check of a hex MAC from the wire; False for malformed hex."""
    try:
        tag = bytes.fromhex(tag_hex)
    except (ValueError, TypeError):
        return False
    return equal(mac(key, label, *fields), tag)


def device_key(master, dev):
    """DK = HKDF(MK, "cfgbox/1", "device-key" | dev_id)."""
    return hkdf(master, b"cfgbox/1", b"device-key" + _b(dev), 32)


def decoy_key(master, dev):
    """Key for answering a hello from an unknown id exactly like a known one."""
    return hkdf(master, b"cfgbox/1", b"unknown" + _b(dev), 32)


def session_key(dk, cn, sn, box, dev, code):
    """SK = HKDF(DK, cn | sn, TR("cfgbox/1 session", box, dev, code)): needs both factors."""
    return hkdf(dk, cn + sn, tr("cfgbox/1 session", box, dev, code), 32)


def storage_key(dk, uid):
    """KS = HKDF(DK, unique_id, "cfgbox/1 storage"): the device's config-at-rest key."""
    return hkdf(dk, uid, b"cfgbox/1 storage", 32)
