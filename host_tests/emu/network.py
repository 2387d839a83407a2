# Host emulation — never copied to a board. The ESP32 `network` module's WLAN, for tests: an AP
# registers itself in the shared registry; a station joins it, gets its own loopback address
# (127.0.4.2 and up, standing for 192.168.4.x) and is refused on a wrong key, an unknown SSID or
# a full AP (max_clients), as a real softAP would.
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


def _ap_file(ssid):
    return reg.path("ap", ssid.encode().hex() + ".json")


def _slots(ssid):
    return reg.path("sta", ssid.encode().hex())


class WLAN:
    def __init__(self, interface=STA_IF):
        self._if = interface
        self._active = False
        self._cfg = {
            "ssid": "ESP_" + reg.device(),
            "key": "",
            "authmode": AUTH_OPEN,
            "max_clients": 10,
            "channel": 1,
            "hidden": False,
        }
        self._joined = None  # (ssid, ip) for a station
        self._status = STAT_IDLE

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
            self._cfg[k] = v
        if self._if == AP_IF and self._active:
            self._publish()
        return None

    def ifconfig(self):
        if self._if == AP_IF:
            return (reg.AP_IP, reg.NETMASK, reg.AP_IP, reg.AP_IP)
        if self._joined:
            return (self._joined[1], reg.NETMASK, reg.AP_IP, reg.AP_IP)
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def status(self, param=None):
        if param == "stations":
            if self._if != AP_IF:
                raise ValueError("stations on AP only")
            return [(bytes(4),) for _ in reg.listdir(_slots(self._cfg["ssid"]))]
        if param == "rssi":
            if not self._joined:
                raise OSError("not connected")
            return -42
        return self._status

    # -- access point
    def _publish(self):
        c = self._cfg
        if c["authmode"] != AUTH_OPEN and len(c["key"]) < 8:
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
            raise OSError("STA must be active to scan")
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
            raise OSError("STA must be active to connect")
        self.disconnect()
        with reg.Lock():
            ap = reg.read_json(_ap_file(ssid))
            if ap is None:
                self._status = STAT_NO_AP_FOUND
                return
            if ap["authmode"] != AUTH_OPEN and ap["key"] != (key or ""):
                self._status = STAT_WRONG_PASSWORD
                return
            d = _slots(ssid)
            for name in reg.listdir(d):  # the same station re-associating replaces its old slot
                with open(d + "/" + name) as f:
                    mine = f.read() == reg.device()
                if mine:
                    reg.remove(d + "/" + name)
            taken = reg.listdir(d)
            if len(taken) >= ap["max_clients"]:
                self._status = STAT_ASSOC_FAIL
                return
            reg.ensure_dir("sta", ssid.encode().hex())
            for n in range(2, 255):
                ip = "127.0.4.%d" % n
                if ip not in taken:
                    with open(d + "/" + ip, "w") as f:
                        f.write(reg.device())
                    self._joined = (ssid, ip)
                    self._status = STAT_GOT_IP
                    return

    def isconnected(self):
        if self._if == AP_IF:
            return self._active and bool(reg.listdir(_slots(self._cfg["ssid"])))
        if self._joined and reg.read_json(_ap_file(self._joined[0])) is None:
            self._joined = None  # the AP went away
            self._status = STAT_BEACON_TIMEOUT
        return self._joined is not None

    def disconnect(self):
        if self._joined:
            with reg.Lock():
                reg.remove(_slots(self._joined[0]) + "/" + self._joined[1])
            self._joined = None
        self._status = STAT_IDLE
