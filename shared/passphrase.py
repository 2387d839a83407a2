# The operator's passphrase: how strong it must be, and a generated one (docs/SEALING.md).
#
# PBKDF2 runs only ~20,000 iterations on the box (an unlock of at most ~10 s on the ESP32), so
# an offline guess costs little: the passphrase itself must carry the strength. The estimate is
# deliberately plain and pessimistic for what it sees: the characters' classes give the
# alphabet, and a character that repeats or continues the one before it (aaa, abc, 321) counts
# for a quarter. Run on the box and on the host alike.
import math

MIN_BITS = 64  # ~2^64 / 5e5 guesses/s on one GPU: ~1.2 million years (docs/SEALING.md)
MIN_LEN = 12
MAX_LEN = 128
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 symbols, none that read alike (l1, o0, i)
_GROUPS = 5
_GROUP = 5  # 25 symbols: 25 * log2(31) = 123.8 bits


class WeakPassphrase(ValueError):
    """The passphrase is refused; the message says why and what would do."""


def _pool(text):
    lower = upper = digit = other = False
    for c in text:
        if "a" <= c <= "z":
            lower = True
        elif "A" <= c <= "Z":
            upper = True
        elif "0" <= c <= "9":
            digit = True
        else:
            other = True
    return 26 * lower + 26 * upper + 10 * digit + 33 * other


def bits(text):
    """Estimated strength of ``text`` in bits (an upper bound for a person's choice)."""
    if not text:
        return 0.0
    per = math.log(max(_pool(text), 2)) / math.log(2)
    n = 0.0
    prev = None
    for c in text:
        o = ord(c)
        n += 0.25 if prev is not None and abs(o - prev) <= 1 else 1.0
        prev = o
    return n * per


def check(text):
    """Raise WeakPassphrase unless ``text`` may seal a box."""
    if not isinstance(text, str):
        raise WeakPassphrase("the passphrase must be text")
    if len(text) < MIN_LEN:
        raise WeakPassphrase("too short: at least %d characters (a generated one has %d)"
                             % (MIN_LEN, _GROUPS * _GROUP + _GROUPS - 1))
    if len(text) > MAX_LEN:
        raise WeakPassphrase("too long: at most %d characters" % MAX_LEN)
    b = bits(text)
    if b < MIN_BITS:
        raise WeakPassphrase("too weak: about %d bits, at least %d are needed; use a generated "
                             "one, or a longer one with more kinds of character" % (b, MIN_BITS))


def generate(random):
    """A new passphrase: 5 groups of 5 symbols from 31 (about 124 bits), from ``random(n)``,
    a CSPRNG giving n bytes (the host's secrets module, or the box's radio-backed urandom)."""
    out = []
    while len(out) < _GROUPS * _GROUP:
        for b in random(16):
            if b < 248 and len(out) < _GROUPS * _GROUP:  # 248 = 8 * 31: no modulo bias
                out.append(_ALPHABET[b % 31])
    return "-".join("".join(out[i:i + _GROUP]) for i in range(0, len(out), _GROUP))
