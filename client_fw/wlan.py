# Joining a WiFi network as the ESP32 port's station reports it (ports/esp32/network_wlan.c):
# the box's AP for a check, the site's networks for the application. One reading of the codes.
import time

_STAT_NO_AP_FOUND = 201
_STAT_WRONG_PASSWORD = 202  # the port's reading of an auth failure (also reason 205)
_NO_AP = (_STAT_NO_AP_FOUND, 210, 211, 212)  # none found (at all, or within the thresholds)

NO_AP = "AP not found"
WRONG_PASSWORD = "wrong passphrase"  # noqa: S105 - a status text
TIMEOUT = "timeout"  # seen in the scan, never took us: a full AP reads so, as a slow one does


class JoinError(Exception):
    def __init__(self, reason, ssid):
        super().__init__("%s: %s" % (ssid, reason))
        self.reason = reason
        self.ssid = ssid


def station(board):
    """The station interface, with the WiFi mode set to station only: a softAP left running
    (a soft reset keeps the driver's state) would pin the station's channel to its own."""
    ap = board.wlan("ap")
    if ap.active():
        ap.active(False)
    return board.wlan("sta")


def join(sta, ssid, password, timeout_ms=10000, settle_ms=4000):
    """Join ``ssid``; returns ifconfig() or raises JoinError. The port's status() keeps the last
    failure's reason until an IP is got (connect() does not clear it), so a reason that was
    already there before this connect() is believed only once it has stood for ``settle_ms``.
    A full AP refuses the station with a reason the port reads as 1001 (still connecting), like a
    slow join: an AP seen in the scan that never takes us within ``timeout_ms`` is a timeout."""
    sta.active(True)
    if not any(n[0] == ssid.encode() for n in sta.scan()):
        raise JoinError(NO_AP, ssid)
    sta.disconnect()  # a connect() while the driver still retries raises on the port
    stale = sta.status()
    sta.connect(ssid, password)
    t0 = time.ticks_ms()
    while not sta.isconnected():
        st = sta.status()
        waited = time.ticks_diff(time.ticks_ms(), t0)
        if (st in _NO_AP or st == _STAT_WRONG_PASSWORD) and (st != stale or waited >= settle_ms):
            sta.disconnect()  # the driver would retry for ever
            raise JoinError(WRONG_PASSWORD if st == _STAT_WRONG_PASSWORD else NO_AP, ssid)
        if waited > timeout_ms:
            sta.disconnect()
            raise JoinError(TIMEOUT, ssid)
        time.sleep_ms(100)
    return sta.ifconfig()


def leave(sta):
    """Leave the network and stop the station (frees an AP slot at once)."""
    try:
        sta.disconnect()
        sta.active(False)
    except OSError:
        pass
