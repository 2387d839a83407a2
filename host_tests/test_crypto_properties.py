# Hypothesis properties of the shared crypto core against independent oracles: CPython's hmac and
# hashlib, `cryptography` (AES-CBC, HKDF, PBKDF2) and `pyotp` (HOTP/TOTP, base32, otpauth URIs).
import base64
import hashlib
import hmac

import pyotp
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import base32, ct, hkdf, otp, otpauth
from shared.mac import hmac_sha1, hmac_sha256
from shared.pbkdf2 import pbkdf2_sha256
from shared.sealedbox import SealError, SealKey

keys = st.binary(min_size=0, max_size=200)
msgs = st.binary(max_size=400)
times = st.integers(min_value=0, max_value=2**34)
digits = st.integers(min_value=6, max_value=8)
algos = st.sampled_from(["sha1", "sha256"])


@given(keys, msgs)
def test_hmac_matches_stdlib(key, msg):
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()
    assert hmac_sha1(key, msg) == hmac.new(key, msg, hashlib.sha1).digest()


@given(st.binary(max_size=40), st.binary(max_size=40))
def test_constant_time_equal_matches_eq(a, b):
    assert ct.equal(a, b) == (a == b)
    assert ct.equal(a, a)


@given(st.binary(min_size=1, max_size=80), st.binary(max_size=80), st.binary(max_size=80),
       st.integers(min_value=1, max_value=255 * 32))
def test_hkdf_matches_cryptography(ikm, salt, info, n):
    ref = HKDF(hashes.SHA256(), n, salt or None, info).derive(ikm)
    assert hkdf.hkdf(ikm, salt, info, n) == ref


@settings(max_examples=60)
@given(st.binary(max_size=100), st.binary(max_size=40), st.integers(1, 300),
       st.integers(1, 100))
def test_pbkdf2_matches_cryptography_and_hashlib(pw, salt, iters, n):
    ref = PBKDF2HMAC(hashes.SHA256(), n, salt, iters).derive(pw)
    assert pbkdf2_sha256(pw, salt, iters, n) == ref
    assert ref == hashlib.pbkdf2_hmac("sha256", pw, salt, iters, n)


@given(st.binary(min_size=14, max_size=64), times, digits, algos)
def test_totp_matches_pyotp(secret, t, d, algo):
    ref = pyotp.TOTP(base64.b32encode(secret).decode(), digits=d,
                     digest=getattr(hashlib, algo))
    assert otp.totp(secret, t, d, algo) == ref.at(t)
    assert otp.hotp(secret, t // 30, d, algo) == pyotp.HOTP(
        base64.b32encode(secret).decode(), digits=d, digest=getattr(hashlib, algo)).at(t // 30)


@given(st.binary(min_size=14, max_size=32), st.integers(120, 2**33), st.integers(-3, 3))
def test_the_box_window_matches_pyotp(secret, t, skew):
    """The steps the box tries at auth (otp.steps) accept exactly the codes pyotp's one-step
    window accepts, and none again once its step was used."""
    ref = pyotp.TOTP(base64.b32encode(secret).decode())
    code = ref.at(t + 30 * skew)
    ours = [c for c in otp.steps(t) if otp.hotp(secret, c) == code]
    assert bool(ours) == ref.verify(code, for_time=t, valid_window=1)
    if ours:
        assert not [c for c in otp.steps(t, ours[0]) if otp.hotp(secret, c) == code]


@given(st.binary(max_size=64), st.booleans())
def test_base32_matches_stdlib(raw, pad):
    enc = base32.encode(raw, pad)
    std = base64.b32encode(raw).decode()
    assert enc == (std if pad else std.rstrip("="))
    assert base32.decode(std) == raw
    assert base32.decode(enc.lower()) == raw
    assert pyotp.utils.strings_equal(enc.rstrip("="), std.rstrip("="))


@given(st.binary(min_size=14, max_size=40), st.text(min_size=1, max_size=20).filter(
    lambda s: ":" not in s and s.strip() == s), st.text(max_size=20).filter(
    lambda s: ":" not in s and s.strip() == s), digits, algos, st.sampled_from([30, 60]), times)
def test_otpauth_against_pyotp(secret, account, issuer, d, algo, period, t):
    uri = otpauth.build_uri(secret, account, issuer or None, d, period, algo)
    theirs = pyotp.parse_uri(uri)
    assert theirs.at(t) == otp.totp(secret, t, d, algo, period)
    assert theirs.name == account and (theirs.issuer or "") == issuer
    ref_uri = pyotp.TOTP(base64.b32encode(secret).decode(), digits=d, interval=period,
                         digest=getattr(hashlib, algo), name=account,
                         issuer=issuer or None).provisioning_uri()
    mine = otpauth.parse_uri(ref_uri)
    assert mine["secret"] == secret and mine["account"] == account
    assert (mine["issuer"] or "") == issuer
    assert (mine["digits"], mine["period"], mine["algorithm"]) == (d, period, algo)


def _oracle_open(key, box, aad):
    """The sealed box format (shared/sealedbox.py header) opened with independent code."""
    okm = HKDF(hashes.SHA256(), 64, None, b"cfgbox sealed box v1").derive(key)
    enc, mk = okm[:32], okm[32:]
    body, tag = box[:-32], box[-32:]
    assert body[0] == 1
    assert hmac.compare_digest(
        hmac.new(mk, body + aad + len(aad).to_bytes(4, "big"), hashlib.sha256).digest(), tag)
    d = Cipher(algorithms.AES(enc), modes.CBC(body[1:17])).decryptor()
    padded = d.update(body[17:]) + d.finalize()
    u = padding.PKCS7(128).unpadder()
    return u.update(padded) + u.finalize()


def _oracle_seal(key, pt, aad, iv):
    okm = HKDF(hashes.SHA256(), 64, None, b"cfgbox sealed box v1").derive(key)
    p = padding.PKCS7(128).padder()
    e = Cipher(algorithms.AES(okm[:32]), modes.CBC(iv)).encryptor()
    body = b"\x01" + iv + e.update(p.update(pt) + p.finalize()) + e.finalize()
    return body + hmac.new(okm[32:], body + aad + len(aad).to_bytes(4, "big"),
                           hashlib.sha256).digest()


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=600), st.binary(max_size=40),
       st.binary(min_size=16, max_size=16))
def test_sealed_box_against_cryptography(key, pt, aad, iv):
    k = SealKey(key)
    assert _oracle_open(key, k.seal(pt, aad), aad) == pt
    assert bytes(k.open(_oracle_seal(key, pt, aad, iv), aad)) == pt


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=200), st.data())
def test_sealed_box_rejects_any_bit_flip_or_truncation(key, pt, data):
    k = SealKey(key)
    box = k.seal(pt)
    i = data.draw(st.integers(0, len(box) - 1))
    bad = bytearray(box)
    bad[i] ^= 1 << data.draw(st.integers(0, 7))
    try:
        k.open(bad)
        raise AssertionError("flipped box opened")
    except SealError:
        pass
    n = data.draw(st.integers(0, len(box) - 1))
    try:
        k.open(box[:n])
        raise AssertionError("truncated box opened")
    except SealError:
        pass
