# The inputs of protocol v2's known-answer vectors (docs/PROTOCOL.md appendix A): shared by the
# vector file both interpreters run and the independent oracle that computed the answers.
MK = bytes(range(32))
DEV = "sensor-042"
BOX = "cfgbox-7c2a"
T = bytes(range(0x40, 0x54))
CN = bytes(range(0xC0, 0xD0))
SN = bytes(range(0x50, 0x60))
SID = bytes(range(0xA0, 0xB0))
NOW = 1795219215
STEP = NOW // 30
UID = bytes.fromhex("246f28a1b2c3")
SALT = bytes(range(0x60, 0x70))  # S, the device's own storage salt (NVS "salt")
IV = bytes(range(0x10, 0x20))
ST = '{"fw":"1.0.0","heap":81234,"rssi":-51,"ver":42,"err":null}'
# {"a": 1, "mqtt": {"host": "h"}} as records (s.3)
CONFIG = bytes.fromhex("010161000001310004" + "6d717474" + "000000"
                       + "01096d71747400686f7374000003226822")
