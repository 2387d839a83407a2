# The device configuration's known keys (docs/CONFIG.md), checked when the operator sets them.
#
# Known sections are checked strictly (a misspelt key is an error, not a silent no-op on the
# device); any other top-level key is the application's own and passes through unchecked.


class ConfigError(ValueError):
    """A config the box refuses; the message names the key and what is wrong with it."""


_MQTT = {"host": str, "port": int, "tls": bool, "user": str, "password": str,
         "client_id": str, "keepalive": int, "ca": "pem", "cert": "pem", "key": "pem"}
_WIFI = {"ssid": str, "password": str}


def _fail(where, msg):
    raise ConfigError("%s: %s" % (where, msg))


def _pem(where, v):
    if not isinstance(v, str) or not v.startswith("-----BEGIN ") or "\n-----END " not in v:
        _fail(where, "expected a PEM text (-----BEGIN ... -----END ...)")


def _section(where, obj, fields):
    if not isinstance(obj, dict):
        _fail(where, "expected an object")
    for k, v in obj.items():
        kind = fields.get(k)
        if kind is None:
            _fail(where, "unknown key %r (known: %s)" % (k, ", ".join(sorted(fields))))
        if kind == "pem":
            _pem(where + "." + k, v)
        elif not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            _fail(where + "." + k, "expected " + kind.__name__)


def _is_hex(s):
    return all(c in "0123456789abcdefABCDEF" for c in s)


def _wifi(nets):
    if not isinstance(nets, list) or not 1 <= len(nets) <= 8:
        _fail("wifi", "expected a list of 1 to 8 networks")
    for i, net in enumerate(nets):
        where = "wifi[%d]" % i
        _section(where, net, _WIFI)
        if not 1 <= len(net.get("ssid", "").encode()) <= 32:
            _fail(where + ".ssid", "1 to 32 bytes")
        pw = net.get("password", "")
        if pw and not 8 <= len(pw) <= 63 and not (len(pw) == 64 and _is_hex(pw)):
            _fail(where + ".password",
                  "empty (open network), 8 to 63 characters or 64 hex digits (WPA2)")


KNOWN = ("name", "wifi", "mqtt", "ntp", "api_keys")


def _one_edit(a, b):
    """True if ``a`` becomes ``b`` by one substitution, insertion, deletion or swap of two
    neighbours, or differs from it only in case."""
    if a.lower() == b.lower():
        return a != b
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long_)):
        if long_[:i] + long_[i + 1:] == short:
            return True
    return False


def near_miss(key):
    """The known top-level key that ``key`` looks like a misspelling of, or None."""
    for known in KNOWN:
        if key != known and _one_edit(key, known):
            return known
    return None


def check(cfg):
    """Raise ConfigError unless ``cfg`` (a parsed config) is one a device can use."""
    if not isinstance(cfg, dict):
        _fail("config", "expected a JSON object")
    if "name" in cfg and (not isinstance(cfg["name"], str) or len(cfg["name"]) > 64):
        _fail("name", "a string of at most 64 characters")
    if "wifi" in cfg:
        _wifi(cfg["wifi"])
    if "mqtt" in cfg:
        m = cfg["mqtt"]
        _section("mqtt", m, _MQTT)
        if "host" not in m:
            _fail("mqtt.host", "required when mqtt is set")
        if not 1 <= m.get("port", 1883) <= 65535:
            _fail("mqtt.port", "1 to 65535")
    if "ntp" in cfg:
        ntp = cfg["ntp"]
        if not (isinstance(ntp, str) or isinstance(ntp, list)
                and all(isinstance(s, str) for s in ntp)):
            _fail("ntp", "a server name or a list of them")
    if "api_keys" in cfg:
        keys = cfg["api_keys"]
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            _fail("api_keys", "an object of name: key strings")
