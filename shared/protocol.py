# Protocol v2 (docs/PROTOCOL.md): transcript encoding and key derivations both ends share.
import hashlib

from shared.ct import equal
from shared.hkdf import hkdf
from shared.mac import hmac_parts

VERSION = 2
NONCE_LEN = 16
MAC_LEN = 32
MAX_CONFIG = 16384  # bytes of config JSON
MAX_RECORDS = 32768  # bytes of a config's record stream (PROTOCOL.md s.3)
TOTP_DIGITS = 6
T_MIN = 1735689600  # 2025-01-01: a box time before this is refused by the device
T_MAX = (1 << 32) - 1  # ... and after this (2106): t travels as 8 bytes, but no further
HELLO = "/api/v2/hello"
AUTH = "/api/v2/auth"
CONFIG = "/api/v2/config"
ACK = "/api/v2/ack"


def _b(x):
    if isinstance(x, int):
        return x.to_bytes(8, "big")  # OverflowError for x < 0 or x >= 2**64: callers bound it
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
    """Constant-time check of a hex MAC from the wire: False for anything but 64 hex digits of
    the right MAC (empty, short, long, not a string, not hex)."""
    if not isinstance(tag_hex, str) or len(tag_hex) != 2 * MAC_LEN:
        return False
    try:
        tag = bytes.fromhex(tag_hex)
    except ValueError:
        return False
    return equal(mac(key, label, *fields), tag)


def device_key(master, dev):
    """DK = HKDF(MK, salt "cfgbox/2", info "device-key" | dev)."""
    return hkdf(master, b"cfgbox/2", b"device-key" + _b(dev), 32)


def decoy_key(master, dev):
    """What the box uses in place of DK for an id it does not know (PROTOCOL.md s.2.1)."""
    return hkdf(master, b"cfgbox/2", b"unknown" + _b(dev), 32)


def long_term_key(dk, totp_secret):
    """K = HKDF(DK, salt T, info "cfgbox/2 long-term"): the key every proof and session key
    comes from, so that each needs both factors."""
    return hkdf(dk, totp_secret, b"cfgbox/2 long-term", 32)


def code(totp_secret, step):
    """The TOTP code of ``step`` (RFC 6238: SHA-1, 6 digits) as six ASCII digits."""
    from shared.otp import hotp  # here: the config reader needs none of it (bench_client.py)

    return hotp(totp_secret, step, TOTP_DIGITS)


def session_key(k, cn, sn, box, dev, step, totp_code):
    """SK = HKDF(K, cn | sn, TR("cfgbox/2 session", box, dev, step, code))."""
    return hkdf(k, cn + sn, tr("cfgbox/2 session", box, dev, step, totp_code), 32)


def storage_key(k, uid):
    """KS = HKDF(K, unique_id, "cfgbox/2 storage"): the device's config-at-rest key."""
    return hkdf(k, uid, b"cfgbox/2 storage", 32)


def wire_int(x, lo=0, hi=(1 << 31) - 1):
    """``x`` from decoded JSON as an int in [lo, hi], or None: true/false are not numbers, and
    a float is taken only when it is a whole number (JSON has one number type)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")) or x != int(x):
            return None
        x = int(x)
    if not isinstance(x, int) or not lo <= x <= hi:
        return None
    return x
