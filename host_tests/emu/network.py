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
DHCPS_LEASES = 8  # CONFIG_LWIP_DHCPS_MAX_STATION_NUM of the stock build (EMU_DHCPS_LEASES)
_FIRST, _LAST = 2, 101  # the server's addresses: .2 to .101 (DHCPS_MAX_LEASE, 100)
_MODE_STA = 1  # WIFI_MODE_STA; WIFI_MODE_AP is 2, APSTA 3
_MODE_AP = 2

# The driver's state: module-level, as the port's statics (one driver per board). "mode" is the
# driver's mode as esp_wifi_set_mode last left it: network_wlan_active never sets WIFI_MODE_NULL,
# it stops the driver (esp_wifi_stop) and the mode stays; esp_wifi_set_config needs the
# interface in that mode ("can be called only when specified interface is enabled").
_drv = {"mode": 0, "started": False}
_ifs = {}  # interface -> {"cfg"}: the driver's configuration, shared by its WLAN objects
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
        ip = _dhcp(ssid, ap.get("leases"), net, d, taken)
        if ip is None:
            return  # associated but no address: status() reads 1001 while the driver retries
        with open(d + "/" + ip, "w") as f:
            f.write(reg.device())
        _sta["joined"] = (ssid, ip, net)
        _sta["reason"] = 0  # IP_EVENT_STA_GOT_IP clears the reason


def _lease_file(ssid):
    return reg.path("lease", ssid.encode().hex() + ".json")


def _leases():
    """The softAP's DHCP pool: CONFIG_LWIP_DHCPS_MAX_STATION_NUM, 8 unless the firmware's
    sdkconfig raises it (the harness sets EMU_DHCPS_LEASES for the frozen build of
    tools/firmware, which has 10)."""
    import os

    return int(os.getenv("EMU_DHCPS_LEASES") or DHCPS_LEASES)


def _dhcp(ssid, size, net, d, taken):
    """An address from the AP's DHCP server (ESP-IDF's lwip dhcpserver.c), or None. A station
    keeps its lease; a new one gets the next address of a rotating pointer over the server's
    100 (`parse_msg`: client_address_plus, skipping leased ones, the lowest free one once past
    the end), and a pool grown past ``size`` drops its oldest lease (`dhcps_coarse_tmr`,
    `kill_oldest_dhcps_pool`) even if that station is still on the AP: leases are not freed
    when a station leaves, only when they expire (120 min, longer than any run here) or the AP
    stops. An address that a station on the AP still uses answers lwIP's ARP check
    (CONFIG_LWIP_DHCP_DOES_ARP_CHECK, on by default): the new station declines it and has no
    address. A site AP (no ``size``) stands for a router with a pool larger than its
    stations."""
    if size is None:
        for n in range(2, 255):
            ip = "%s.%d" % (net, n)
            if ip not in taken:
                return ip
        return None
    me = reg.device()
    f = _lease_file(ssid)
    reg.ensure_dir("lease")
    pool = reg.read_json(f) or {"seq": 0, "plus": _FIRST, "leases": []}
    pool["seq"] += 1
    mine = [lease for lease in pool["leases"] if lease[0] == me]
    if mine:
        mine[0][2] = pool["seq"]  # a renewal restarts its timer
        ip = mine[0][1]
    else:
        plus, first, gap = pool["plus"], _FIRST, False
        for n in sorted(int(lease[1].rsplit(".", 1)[1]) for lease in pool["leases"]):
            if n == plus:
                plus += 1
            if not gap:
                if first < n:
                    gap = True
                else:
                    first += 1
        n = plus if plus <= _LAST else first
        if n > _LAST:
            pool["plus"] = _FIRST
            reg.write_json(f, pool)
            return None  # every address leased
        pool["plus"] = _FIRST if n == _LAST else n + 1
        ip = "%s.%d" % (net, n)
        pool["leases"].append([me, ip, pool["seq"]])
        if len(pool["leases"]) > size:
            pool["leases"].remove(min(pool["leases"], key=lambda lease: lease[2]))
    reg.write_json(f, pool)
    if ip in taken:
        with open(d + "/" + ip) as h:
            if h.read() != me:
                return None  # the address answers ARP: declined
    return ip


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
        # port's network_wlan_make_new hands out the same static object (network_wlan.c)
        if interface not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        self._if = interface
        if interface not in _ifs:
            _ifs[interface] = {"cfg": {
                "ssid": "ESP_" + reg.device() if interface == AP_IF else "",
                "key": "",
                "authmode": AUTH_OPEN,
                "max_clients": 10,
                "channel": 1,
                "hidden": False,
            }}

    @property
    def _bit(self):
        return _MODE_STA if self._if == STA_IF else _MODE_AP

    @property
    def _active(self):
        return _up(self._bit)

    @property
    def _cfg(self):
        return _ifs[self._if]["cfg"]

    # -- both interfaces
    def active(self, on=None):
        """network_wlan_active: the mode gains or loses this interface's bit; no bit left stops
        the driver (its mode stays as it was), a bit on a stopped driver starts it."""
        ap_was, sta_was = _ap_up(), _sta_up()
        if on is not None:
            mode = _drv["mode"] if _drv["started"] else 0
            mode = (mode | self._bit) if on else (mode & ~self._bit)
            if mode == 0:
                _drv["started"] = False
            else:
                _drv["mode"] = mode
                _drv["started"] = True
            if ap_was and not _ap_up():
                WLAN(AP_IF)._withdraw()
            elif _ap_up() and not ap_was:
                WLAN(AP_IF)._publish()
            if sta_was and not _sta_up():
                _stop_station()
        return self._active

    def config(self, *args, **kw):
        """network_wlan_config: keyword arguments set, one positional argument reads; the
        port's keys, interface checks and errors."""
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        if kw:
            cfg = dict(self._cfg)
            for k, v in kw.items():
                req = None
                if k == "mac":
                    if len(bytes(v)) != 6:
                        raise ValueError("invalid buffer length")
                elif k in ("ssid", "essid"):
                    req, cfg["ssid"] = AP_IF, str(v)[:32]
                elif k == "hidden":
                    req, cfg["hidden"] = AP_IF, bool(v)
                elif k in ("security", "authmode"):
                    req, cfg["authmode"] = AP_IF, int(v)
                elif k in ("key", "password"):
                    req, cfg["key"] = AP_IF, str(v)[:63]
                elif k == "channel":
                    cfg["channel"] = int(v)
                elif k == "max_clients":
                    req, cfg["max_clients"] = AP_IF, int(v)
                elif k == "reconnects":
                    req, cfg["reconnects"] = STA_IF, int(v)
                elif k not in ("hostname", "dhcp_hostname", "txpower", "protocol", "pm"):
                    raise ValueError("unknown config param")
                if req is not None and req != self._if:
                    raise OSError("AP required" if req == AP_IF else "STA required")
            self._set_config(cfg)
            return None
        if len(args) != 1:
            raise TypeError("can query only one param")
        k = args[0]
        if k == "mac":
            return _mac(self._if)
        if k in ("ssid", "essid"):
            return self._cfg["ssid"]
        if k in ("hidden", "security", "authmode"):
            if self._if != AP_IF:
                raise OSError("AP required")
            return self._cfg["hidden" if k == "hidden" else "authmode"]
        if k in ("channel", "max_clients"):
            return WLAN(AP_IF)._cfg[k]  # the union's AP member, as the port reads it
        if k == "reconnects":
            if self._if != STA_IF:
                raise OSError("STA required")
            return self._cfg.get("reconnects", -1)
        raise ValueError("unknown config param")  # "key"/"password" cannot be read back

    def _set_config(self, cfg):
        """esp_wifi_set_config: refused for an interface outside the driver's mode; a running
        softAP restarts with the new configuration (its stations are dropped)."""
        if not _drv["mode"] & self._bit:
            raise OSError("Wifi Invalid Mode")  # ESP_ERR_WIFI_MODE
        if self._if == AP_IF:
            if not 1 <= cfg["max_clients"] <= MAX_CLIENTS:
                raise OSError("Wifi Invalid Argument")  # ESP_ERR_WIFI_ARG
            if cfg["authmode"] != AUTH_OPEN and not 8 <= len(cfg["key"]) <= 63:
                raise RuntimeError("Wifi Unknown Error 0x0102")  # ESP_ERR_INVALID_ARG
        up = self._if == AP_IF and _ap_up()
        if up:
            self._withdraw()
        _ifs[self._if]["cfg"] = cfg
        if up:
            self._publish()

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
            if not _ap_up():
                return []
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
        c = dict(self._cfg, leases=_leases())
        reg.ensure_dir("ap")
        reg.write_json(_ap_file(c["ssid"]), c)

    def _withdraw(self):
        # the softAP stops: its stations are dropped and its DHCP server's leases freed
        # (dhcps_stop empties the pool)
        with reg.Lock():
            reg.remove(_ap_file(self._cfg["ssid"]))
            reg.remove(_lease_file(self._cfg["ssid"]))
            d = _slots(self._cfg["ssid"])
            for name in reg.listdir(d):
                reg.remove(d + "/" + name)

    # -- station
    def scan(self):
        # network_wlan_scan checks the driver's mode; a stopped driver's scan fails and the
        # port returns an empty list
        if not _drv["mode"] & _MODE_STA:
            raise OSError("STA must be active")
        if not _drv["started"]:
            return []
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
        if self._if != STA_IF:
            raise OSError("STA required")
        if not _drv["mode"] & _MODE_STA:
            raise OSError("Wifi Invalid Mode")  # esp_wifi_set_config(STA)
        if not _drv["started"]:
            raise OSError("Wifi Not Started")  # esp_wifi_connect
        _poll()
        if _sta["requested"] and not _sta["joined"]:
            # the driver is still trying: esp_wifi_connect() returns ESP_ERR_WIFI_CONN, which
            # esp_exceptions raises as "Wifi Internal Error" (network_wlan.c network_wlan_connect,
            # network_common.c; v1.25.0 to v1.28.0, micropython#17661)
            raise OSError("Wifi Internal Error")
        _leave()
        self._cfg["ssid"] = ssid
        _sta["target"] = (ssid, key)
        _sta["requested"] = True
        _sta["due"] = emu_clock.uptime_ms() + _ATTEMPT_MS  # the reason is not cleared here

    def isconnected(self):
        if self._if == AP_IF:
            return _ap_up() and bool(reg.listdir(_slots(self._cfg["ssid"])))
        _poll()
        return _sta["joined"] is not None

    def disconnect(self):
        if not _drv["started"]:
            raise OSError("Wifi Not Started")  # esp_wifi_disconnect
        _stop_station()


def _up(bit):
    return _drv["started"] and bool(_drv["mode"] & bit)


def _ap_up():
    return _up(_MODE_AP)


def _sta_up():
    return _up(_MODE_STA)


def _stop_station():
    # leaving an association is reported (ASSOC_LEAVE reads as 1000); stopping an attempt
    # that never associated leaves the last failure's reason standing (the stricter reading)
    if _sta["joined"]:
        _sta["reason"] = _REASON_ASSOC_LEAVE
    _sta["requested"] = False
    _leave()


def _mac(interface):
    """The interface's MAC (esp_wifi_get_mac): the station's is the eFuse base MAC, which
    machine.unique_id() returns too; the softAP's is the base + 1."""
    import machine

    base = bytearray(machine.unique_id())
    if interface == AP_IF:
        base[5] = (base[5] + 1) & 0xFF
    return bytes(base)
