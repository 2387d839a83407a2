# Host emulation — never copied to a board. The ESP32 `network.WLAN` with the port's semantics
# (ports/esp32/network_wlan.c): an AP registers itself in the shared registry; a station's
# connect() only starts an attempt that resolves on the emulated clock, and the driver retries for
# ever (reconnects=-1, the default). status() reads the last disconnect reason as the port does:
# 201 (no AP found), 202 (auth failed, also reason 205), 210-212, 1000 after disconnect(), and
# any other reason (a full AP's ASSOC_TOOMANY, a beacon timeout) as 1001 while retrying. The
# reason is cleared only on getting an IP, never by connect(). A joined station gets its own
# loopback address on the AP's network: 127.0.4.2 and up on a board's softAP (standing for
# 192.168.4.x); a site AP that the harness publishes (no board runs it) names its own network
# ("net", e.g. 127.0.8 for a site's 10.0.8.x) and a DNS table ("dns": name -> address), which
# the emulated socket module resolves and routes by (host_tests/emu/socket.py).
import emu_clock
import emu_registry as reg

STA_IF = 0
AP_IF = 1
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_BEACON_TIMEOUT = 200
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

# Disconnect reasons (esp_wifi_types.h) the emulation produces
_REASON_ASSOC_LEAVE = 8
_REASON_ASSOC_TOOMANY = 17
_REASON_BEACON_TIMEOUT = 200
_REASON_NO_AP_FOUND = 201
_REASON_AUTH_FAIL = 202
_REASON_CONNECTION_FAIL = 205
_PASSED_THROUGH = (201, 210, 211, 212)

_ATTEMPT_MS = 1500  # one association attempt (scan of the channel, auth, 4-way handshake, DHCP)
_SCAN_MS = 1500  # an active scan of 13 channels
MAX_CLIENTS = 10  # the most stations a softAP takes here (ESP_WIFI_MAX_CONN_NUM is 10 or 15)

# The station's driver state: module-level, as the port's statics (one STA per board)
_ifs = {}  # interface -> {"active", "cfg"}: the driver's state, shared by its WLAN objects
_sta = {"reason": 0, "requested": False, "target": None, "due": 0, "joined": None}


def _ap_file(ssid):
    return reg.path("ap", ssid.encode().hex() + ".json")


def _slots(ssid):
    return reg.path("sta", ssid.encode().hex())


def _leave():
    j = _sta["joined"]
    if j:
        with reg.Lock():
            reg.remove(_slots(j[0]) + "/" + j[1])
        _sta["joined"] = None


def _attempt():
    """One association attempt to the target AP: joins, or records why not."""
    ssid, key = _sta["target"]
    with reg.Lock():
        ap = reg.read_json(_ap_file(ssid))
        if ap is None:
            _sta["reason"] = _REASON_NO_AP_FOUND
            return
        if ap["authmode"] != AUTH_OPEN and ap["key"] != (key or ""):
            _sta["reason"] = _REASON_AUTH_FAIL
            return
        d = _slots(ssid)
        for name in reg.listdir(d):  # the same station re-associating replaces its old slot
            with open(d + "/" + name) as f:
                mine = f.read() == reg.device()
            if mine:
                reg.remove(d + "/" + name)
        taken = reg.listdir(d)
        if len(taken) >= ap["max_clients"]:
            _sta["reason"] = _REASON_ASSOC_TOOMANY  # the AP refuses (deauths) the station
            return
        reg.ensure_dir("sta", ssid.encode().hex())
        net = ap.get("net", reg.AP_NET)
        for n in range(2, 255):
            ip = "%s.%d" % (net, n)
            if ip not in taken:
                with open(d + "/" + ip, "w") as f:
                    f.write(reg.device())
                _sta["joined"] = (ssid, ip, net)
                _sta["reason"] = 0  # IP_EVENT_STA_GOT_IP clears the reason
                return


def _poll():
    """Bring the driver up to the emulated now: pending attempts resolve, retries follow."""
    s = _sta
    j = s["joined"]
    if j and reg.read_json(_ap_file(j[0])) is None:
        s["joined"] = None  # the AP went away
        s["reason"] = _REASON_BEACON_TIMEOUT
        s["due"] = emu_clock.uptime_ms() + _ATTEMPT_MS
    now = emu_clock.uptime_ms()
    for _ in range(8):  # attempts that fell due since the last look (bounded)
        if s["joined"] or not s["requested"] or now < s["due"]:
            return
        _attempt()
        s["due"] += _ATTEMPT_MS


def joined_network():
    """(network prefix, DNS table) of the AP this board's station has an IP from, or None; the
    emulated socket module's routing and name lookup (lwIP's netif and DNS client)."""
    _poll()
    j = _sta["joined"]
    if not j:
        return None
    ap = reg.read_json(_ap_file(j[0])) or {}
    return j[2], ap.get("dns", {})


def networks():
    """The network prefixes of every AP in the world (where an address routes to)."""
    out = set()
    for name in reg.listdir(reg.path("ap")):
        if name.endswith(".json"):
            ap = reg.read_json(reg.path("ap", name))
            if ap:
                out.add(ap.get("net", reg.AP_NET))
    return out


class WLAN:
    def __init__(self, interface=STA_IF):
        # one driver per board: every WLAN object of an interface shares its state, as the
        # port's get_wlan_from_id hands out the same static object (network_wlan.c)
        self._if = interface
        if interface not in _ifs:
            _ifs[interface] = {"active": False, "cfg": {
                "ssid": "ESP_" + reg.device(),
                "key": "",
                "authmode": AUTH_OPEN,
                "max_clients": 10,
                "channel": 1,
                "hidden": False,
            }}

    @property
    def _active(self):
        return _ifs[self._if]["active"]

    @_active.setter
    def _active(self, on):
        _ifs[self._if]["active"] = on

    @property
    def _cfg(self):
        return _ifs[self._if]["cfg"]

    # -- both interfaces
    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if self._if == AP_IF:
            if self._active:
                self._publish()
            else:
                self._withdraw()
        elif not self._active:
            self.disconnect()
        return None

    def config(self, *args, **kw):
        if args:
            if args[0] == "mac":
                return bytes.fromhex("24" + reg.device().encode().hex()[:10].ljust(10, "0"))
            return self._cfg[args[0]]
        for k, v in kw.items():
            if k not in self._cfg:
                raise ValueError("unknown config param " + k)
            if k == "max_clients" and not 1 <= v <= MAX_CLIENTS:
                raise OSError("Wifi Invalid Argument")  # esp_wifi_set_config: ESP_ERR_WIFI_ARG
            self._cfg[k] = v
        if self._if == AP_IF and self._active:
            self._publish()
        return None

    def ifconfig(self):
        if self._if == AP_IF:
            return (reg.AP_IP, reg.NETMASK, reg.AP_IP, reg.AP_IP)
        if self.isconnected():
            _, ip, net = _sta["joined"]
            return (ip, reg.NETMASK, net + ".1", net + ".1")  # the AP is gateway and DNS
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def status(self, param=None):
        if param == "stations":
            if self._if != AP_IF:
                raise OSError("AP required")
            return [(bytes(6),) for _ in reg.listdir(_slots(self._cfg["ssid"]))]
        if param == "rssi":
            if self._if != STA_IF:
                raise OSError("STA required")
            if not self.isconnected():
                raise OSError("Wifi Not Connected")  # esp_wifi_sta_get_ap_info
            return -42
        if param is not None:
            raise ValueError("unknown status param")
        if self._if != STA_IF:
            return None
        _poll()
        r = _sta["reason"]
        if _sta["joined"]:
            return STAT_GOT_IP
        if r in _PASSED_THROUGH:
            return r
        if r in (_REASON_AUTH_FAIL, _REASON_CONNECTION_FAIL):
            return STAT_WRONG_PASSWORD
        if r == _REASON_ASSOC_LEAVE:
            return STAT_IDLE
        if _sta["requested"]:
            return STAT_CONNECTING
        return STAT_IDLE if r == 0 else r

    # -- access point
    def _publish(self):
        c = self._cfg
        if c["authmode"] != AUTH_OPEN and not 8 <= len(c["key"]) <= 63:
            raise ValueError("WPA2 passphrase must be 8 to 63 characters")
        reg.ensure_dir("ap")
        reg.write_json(_ap_file(c["ssid"]), c)

    def _withdraw(self):
        with reg.Lock():
            reg.remove(_ap_file(self._cfg["ssid"]))
            d = _slots(self._cfg["ssid"])
            for name in reg.listdir(d):
                reg.remove(d + "/" + name)

    # -- station
    def scan(self):
        if self._if != STA_IF or not self._active:
            raise OSError("STA must be active")
        emu_clock.advance_ms(_SCAN_MS)
        out = []
        for name in reg.listdir(reg.path("ap")):
            if name.endswith(".json"):
                ap = reg.read_json(reg.path("ap", name))
                if ap and not ap["hidden"]:
                    out.append((ap["ssid"].encode(), b"\x24\x0a\xc4\x00\x00\x01", ap["channel"],
                                -42, ap["authmode"], False))
        return out

    def connect(self, ssid, key=None):
        if self._if != STA_IF or not self._active:
            raise OSError("STA must be active")
        _poll()
        if _sta["requested"] and not _sta["joined"]:
            # the driver is still trying: esp_wifi_connect() returns ESP_ERR_WIFI_CONN, which
            # esp_exceptions raises as "Wifi Internal Error" (network_wlan.c network_wlan_connect,
            # network_common.c; v1.25.0 to v1.28.0, micropython#17661)
            raise OSError("Wifi Internal Error")
        _leave()
        _sta["target"] = (ssid, key)
        _sta["requested"] = True
        _sta["due"] = emu_clock.uptime_ms() + _ATTEMPT_MS  # the reason is not cleared here

    def isconnected(self):
        if self._if == AP_IF:
            return self._active and bool(reg.listdir(_slots(self._cfg["ssid"])))
        _poll()
        return _sta["joined"] is not None

    def disconnect(self):
        # leaving an association is reported (ASSOC_LEAVE reads as 1000); stopping an attempt
        # that never associated leaves the last failure's reason standing (the stricter reading)
        if _sta["joined"]:
            _sta["reason"] = _REASON_ASSOC_LEAVE
        _sta["requested"] = False
        _leave()
