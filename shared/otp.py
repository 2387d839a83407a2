# HOTP (RFC 4226) and TOTP (RFC 6238): pure functions of the secret and a counter or Unix time.
import hashlib

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


def steps(unix_time, last_counter=-1, window=1, step=STEP):
    """The time steps a code may be accepted for at ``unix_time``: ``window`` either side, and
    only those after ``last_counter``, so each code is good once (RFC 6238 section 5.2)."""
    now = counter_at(unix_time, step)
    return range(max(now - window, last_counter + 1, 0), now + window + 1)
