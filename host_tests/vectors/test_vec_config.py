# The config check (shared/config.py) on both interpreters: what the box accepts and the exact
# words it refuses with.
import unittest

from shared.config import ConfigError, check

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
GOOD = {"name": "boiler room",
        "wifi": [{"ssid": "plant-floor", "password": "s3cret-wifi"}, {"ssid": "guest"}],
        "mqtt": {"host": "mqtt.example.net", "port": 8883, "tls": True, "user": "s1",
                 "password": "p", "client_id": "s1", "keepalive": 60, "ca": PEM, "cert": PEM,
                 "key": PEM.replace("CERTIFICATE", "PRIVATE KEY")},
        "ntp": ["pool.ntp.org", "time.example.net"], "api_keys": {"weather": "k-1"},
        "app": {"interval_s": 60, "anything": [1, None, {"x": True}]}}

BAD = [
    ([1], "config: expected a JSON object"),
    ({"name": 5}, "name: a string of at most 64 characters"),
    ({"wifi": []}, "wifi: expected a list of 1 to 8 networks"),
    ({"wifi": {"ssid": "x"}}, "wifi: expected a list of 1 to 8 networks"),
    ({"wifi": [{"ssid": "x", "pasword": "12345678"}]}, "wifi[0]: unknown key 'pasword'"),
    ({"wifi": [{"ssid": "x", "password": "short"}]}, "wifi[0].password: empty (open network)"),
    ({"wifi": [{"ssid": "x", "password": "g" * 64}]}, "wifi[0].password: empty (open network)"),
    ({"wifi": [{"ssid": "x" * 33}]}, "wifi[0].ssid: 1 to 32 bytes"),
    ({"wifi": [{"password": "12345678"}]}, "wifi[0].ssid: 1 to 32 bytes"),
    ({"mqtt": {"port": 1883}}, "mqtt.host: required when mqtt is set"),
    ({"mqtt": {"host": "h", "port": "1883"}}, "mqtt.port: expected int"),
    ({"mqtt": {"host": "h", "port": 0}}, "mqtt.port: 1 to 65535"),
    ({"mqtt": {"host": "h", "tls": 1}}, "mqtt.tls: expected bool"),
    ({"mqtt": {"host": "h", "port": True}}, "mqtt.port: expected int"),
    ({"mqtt": {"host": "h", "ca": "MIIB"}}, "mqtt.ca: expected a PEM text"),
    ({"mqtt": "h"}, "mqtt: expected an object"),
    ({"ntp": 5}, "ntp: a server name or a list of them"),
    ({"api_keys": {"a": 1}}, "api_keys: an object of name: key strings"),
]


class TestConfigCheck(unittest.TestCase):
    def test_good_config_passes(self):
        check(GOOD)
        check({})
        check({"wifi": [{"ssid": "raw-psk", "password": "0123456789abcdef" * 4}]})

    def test_bad_configs_say_where_and_what(self):
        for cfg, want in BAD:
            try:
                check(cfg)
            except ConfigError as e:
                self.assertTrue(str(e).startswith(want), (str(e), want))
            else:
                self.fail("accepted: %r" % (cfg,))
