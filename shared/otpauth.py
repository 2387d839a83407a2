# otpauth:// URIs (Google Authenticator key URI format), built and parsed as authenticator apps do.
from shared import base32

_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def quote(text):
    """Percent-encode ``text`` (UTF-8) leaving only RFC 3986 unreserved characters."""
    out = []
    for b in text.encode():
        out.append(chr(b) if b in _SAFE else "%%%02X" % b)
    return "".join(out)


def unquote(text):
    """Decode %XX escapes (and '+' as space, as query strings allow) to a ``str``."""
    raw = text.replace("+", " ").encode()
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:  # '%'
            if i + 3 > len(raw):
                raise ValueError("otpauth escape")
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode()


def build_uri(secret, account, issuer=None, digits=6, period=30, algorithm="SHA1"):
    """``otpauth://totp/Issuer:account?secret=...&issuer=...`` for a raw ``secret`` (bytes)."""
    label = quote(account) if not issuer else quote(issuer) + ":" + quote(account)
    q = "secret=" + base32.encode(secret, pad=False)
    if issuer:
        q += "&issuer=" + quote(issuer)
    q += "&algorithm=" + algorithm.upper() + "&digits=%d&period=%d" % (digits, period)
    return "otpauth://totp/" + label + "?" + q


def parse_uri(uri):
    """Parse an otpauth:// URI into a dict.

    Keys: ``type`` ('totp' or 'hotp'), ``account``, ``issuer`` (or None), ``secret`` (bytes),
    ``algorithm`` ('sha1', 'sha256', ...), ``digits``, ``period``, ``counter`` (hotp only).
    Raises ``ValueError`` if it is not a well-formed otpauth URI with a secret.
    """
    prefix = "otpauth://"
    if not uri.startswith(prefix):
        raise ValueError("not an otpauth URI")
    rest = uri[len(prefix) :]
    kind, _, rest = rest.partition("/")
    kind = kind.lower()
    if kind not in ("totp", "hotp"):
        raise ValueError("otpauth type")
    label, _, query = rest.partition("?")
    label = unquote(label)
    issuer, sep, account = label.partition(":")
    if not sep:
        issuer, account = None, label
    account = account.lstrip(" ")
    params = {}
    for item in query.split("&"):
        if item:
            k, _, v = item.partition("=")
            params[unquote(k).lower()] = unquote(v)
    if "secret" not in params:
        raise ValueError("otpauth secret missing")
    if params.get("issuer"):
        issuer = params["issuer"]
    out = {
        "type": kind,
        "account": account,
        "issuer": issuer,
        "secret": base32.decode(params["secret"]),
        "algorithm": params.get("algorithm", "SHA1").lower(),
        "digits": int(params.get("digits", "6")),
        "period": int(params.get("period", "30")),
    }
    if kind == "hotp":
        out["counter"] = int(params.get("counter", "0"))
    return out
