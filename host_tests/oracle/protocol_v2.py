# An independent implementation of docs/PROTOCOL.md's derivations, written from the document
# with CPython's hmac/hashlib and the `cryptography` package only (nothing from shared/): the
# oracle the known-answer vectors in vectors/test_vec_protocol.py are checked against.
import hashlib
import hmac
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf(ikm, salt, info, n=32):
    return HKDF(hashes.SHA256(), n, salt or None, info).derive(ikm)


def tr(label, *fields):
    out = label.encode()
    for f in fields:
        if isinstance(f, int):
            f = struct.pack(">Q", f)
        elif isinstance(f, str):
            f = f.encode()
        out += struct.pack(">H", len(f)) + f
    return out


def mac(key, label, *fields):
    return hmac.new(key, tr(label, *fields), hashlib.sha256).digest()


def hotp(secret, counter):
    d = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = d[-1] & 15
    return "%06d" % ((struct.unpack(">I", d[o:o + 4])[0] & 0x7FFFFFFF) % 10**6)


def seal(key, plaintext, aad, iv):
    okm = hkdf(key, b"", b"cfgbox sealed box v1", 64)
    p = padding.PKCS7(128).padder()
    padded = p.update(plaintext) + p.finalize()
    enc = Cipher(algorithms.AES(okm[:32]), modes.CBC(iv)).encryptor()
    c = enc.update(padded) + enc.finalize()
    head = b"\x01" + iv
    tag = hmac.new(okm[32:], head + c + aad + struct.pack(">I", len(aad)),
                   hashlib.sha256).digest()
    return head + c + tag


def record(kind, path, value):
    p = b"\x00".join(k.encode() for k in path)
    return bytes([kind, len(p)]) + p + len(value).to_bytes(3, "big") + value


# the inputs of every vector (PROTOCOL.md appendix A); the records are built here from s.3
sys.path.insert(0, str(Path(__file__).parent.parent / "vectors"))
from kat_inputs import BOX, CN, DEV, IV, MK, NOW, SALT, SID, SN, ST, STEP, T, UID  # noqa: E402

CONFIG = record(1, ["a"], b"1") + record(0, ["mqtt"], b"") + record(1, ["mqtt", "host"], b'"h"')


def vectors():
    dk = hkdf(MK, b"cfgbox/2", b"device-key" + DEV.encode())
    k = hkdf(dk, T, b"cfgbox/2 long-term")
    code = hotp(T, STEP)
    sk = hkdf(k, CN + SN, tr("cfgbox/2 session", BOX, DEV, STEP, code))
    return {
        "DK": dk,
        "decoy": hkdf(MK, b"cfgbox/2", b"unknown" + DEV.encode()),
        "K": k,
        "code": code.encode(),
        "bp": mac(k, "cfgbox/2 box", BOX, DEV, CN, SN, NOW),
        "SK": sk,
        "dp": mac(sk, "cfgbox/2 dev", BOX, DEV, CN, SN, STEP),
        "ap": mac(sk, "cfgbox/2 auth-ok", SID, DEV, STEP),
        "m_config": mac(sk, "cfgbox/2 config", SID, 41),
        "m_unchanged": mac(sk, "cfgbox/2 unchanged", SID, 41),
        "m_ack": mac(sk, "cfgbox/2 ack", SID, 42, ST),
        "m_ack_ok": mac(sk, "cfgbox/2 ack-ok", SID, 42),
        "cfg_stream": (42).to_bytes(4, "big")
        + seal(sk, CONFIG, tr("cfgbox/2 cfg", SID, DEV, 42), IV),
        "KS": hkdf(k, UID + SALT, b"cfgbox/2 storage"),
    }


if __name__ == "__main__":
    for name, value in vectors().items():
        print("    %r: %r," % (name, value.hex()))
