# The operator's passphrase: how strong it must be, and a generated one (docs/SEALING.md).
#
# PBKDF2 runs only ~20,000 iterations on the box (an unlock of at most ~10 s on the ESP32), so
# an offline guess costs little: the passphrase itself must carry the strength. The estimate is
# deliberately plain and pessimistic for what it sees: the characters' classes give the
# alphabet, a character that repeats or continues the one before it (aaa, abc, 321) counts for
# a quarter, and the pieces people reach for (common words, l33t included, keyboard and
# alphabet runs, years, a piece said twice) count as one small choice each. Run on the box and
# on the host alike; the host adds zxcvbn (tools/fleet.py).
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


# Pieces a person reaches for, each counted as one choice among few, not as its characters:
# common words (after undoing l33t), runs along the alphabet, the digits or a keyboard row, a
# year, and a piece that repeats an earlier one.
_WORDS = ("password", "passwort", "passphrase", "pass", "word", "admin", "root", "login",
          "letmein", "welcome", "qwerty", "dragon", "monkey", "master", "shadow", "sunshine",
          "princess", "football", "baseball", "soccer", "iloveyou", "love", "trustno", "secret",
          "summer", "winter", "spring", "autumn", "hello", "freedom", "whatever", "changeme",
          "default", "guest", "test", "cfgbox", "esp32", "micropython", "january", "february",
          "march", "april", "june", "july", "august", "september", "october", "november",
          "december", "monday", "friday", "sunday", "abc", "qwertz", "azerty", "batman",
          "superman", "starwars", "pokemon", "computer", "internet", "phrase", "access", "mypass")
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
         "!": "i", "|": "l"}
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890", "qwertzuiop", "azertyuiop")
_WORD_BITS = 8.0  # one of a few hundred common words, any case
_RUN_BITS = 5.0  # a run: where it starts, its direction and length
_YEAR_BITS = 7.0  # 1900-2099
_REPEAT_BITS = 4.0  # "the same as before"


def _run(low, i):
    """Length of the run starting at ``i`` (3 or more characters, each next to the one before
    it along the alphabet, the digits or a keyboard row, one way), else 0."""
    best = 0
    for step in (1, -1):
        j = i + 1
        while j < len(low) and ord(low[j]) - ord(low[j - 1]) == step:
            j += 1
        best = max(best, j - i)
        for row in _ROWS:
            k = row.find(low[i])
            if k < 0:
                continue
            j = i + 1
            while j < len(low) and 0 <= k + step * (j - i) < len(row) and \
                    low[j] == row[k + step * (j - i)]:
                j += 1
            best = max(best, j - i)
    return best if best >= 3 else 0


def _piece(text, low, plain, i):
    """(length, bits) of the pattern starting at ``i`` that covers the most characters (the
    cheapest of equally long ones), or None."""
    found = []
    for w in _WORDS:
        if plain.startswith(w, i):
            found.append((len(w), _WORD_BITS))
    n = _run(low, i)
    if n:
        found.append((n, _RUN_BITS))
    if len(text) >= i + 4 and text[i:i + 2] in ("19", "20") and text[i + 2:i + 4].isdigit():
        found.append((4, _YEAR_BITS))
    # the longest piece (3 or more) seen before i: a piece seen implies its own start was, so
    # it grows one character at a time until it is new
    n = 2
    while i + n < len(text) and low[i:i + n + 1] in low[:i]:
        n += 1
    if n >= 3:
        found.append((n, _REPEAT_BITS))
    # the longest piece wins; among equally long ones, the cheapest
    return max(found, key=lambda f: (f[0], -f[1])) if found else None


def bits(text):
    """Estimated strength of ``text`` in bits (an upper bound for a person's choice): each
    character costs log2 of its classes' alphabet, a character next to the one before it a
    quarter of that, and a common word, a run, a year or a repeated piece a few bits in all."""
    if not text:
        return 0.0
    per = math.log(max(_pool(text), 2)) / math.log(2)
    low = text.lower()
    plain = "".join(_LEET.get(c, c) for c in low)
    n = 0.0
    i = 0
    prev = None
    while i < len(text):
        piece = _piece(text, low, plain, i)
        if piece and piece[1] < piece[0] * per:
            n += piece[1]
            i += piece[0]
            prev = None
            continue
        o = ord(text[i])
        n += (0.25 if prev is not None and abs(o - prev) <= 1 else 1.0) * per
        prev = o
        i += 1
    return n


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
