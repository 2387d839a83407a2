# HOTP (RFC 4226) and TOTP (RFC 6238): pure functions of the secret and a counter or Unix time.
import hashlib

from shared.ct import equal
from shared.mac import hmac_parts

_ALGOS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
STEP = 30


def _hash(algo):
    try:
        return _ALGOS[algo.lower()]
    except KeyError:
        raise ValueError("otp algorithm") from None


def hotp(secret, counter, digits=6, algo="sha1"):
    """HOTP value of ``counter`` as a zero-padded string of ``digits`` (6 to 8) digits."""
    if not 6 <= digits <= 8:
        raise ValueError("otp digits")
    if counter < 0:
        raise ValueError("otp counter")
    mac = hmac_parts(_hash(algo), secret, (counter.to_bytes(8, "big"),))
    off = mac[-1] & 0x0F
    code = int.from_bytes(mac[off : off + 4], "big") & 0x7FFFFFFF
    s = str(code % (10**digits))
    return "0" * (digits - len(s)) + s


def counter_at(unix_time, step=STEP, t0=0):
    """The TOTP time-step counter T = floor((unix_time - t0) / step)."""
    return int(unix_time - t0) // step


def totp(secret, unix_time, digits=6, algo="sha1", step=STEP, t0=0):
    """TOTP code at ``unix_time`` (seconds since 1970; never read from a clock here)."""
    return hotp(secret, counter_at(unix_time, step, t0), digits, algo)


def verify_totp(
    secret, code, unix_time, window=1, last_counter=-1, digits=6, algo="sha1", step=STEP, t0=0
):
    """Check ``code`` against the steps ``window`` either side of ``unix_time``.

    Steps at or below ``last_counter`` (the last one accepted for this secret) are never
    accepted, so each code is good once (RFC 6238 section 5.2). Returns the matched counter,
    which the caller stores as the new ``last_counter``, or None. Every candidate is computed
    and compared in constant time, whichever matches.
    """
    if isinstance(code, str):
        code = code.encode()
    now = counter_at(unix_time, step, t0)
    found = None
    for c in range(now - window, now + window + 1):
        if c < 0:
            continue
        ok = equal(hotp(secret, c, digits, algo).encode(), code)
        if ok and c > last_counter and found is None:
            found = c
    return found
