# Freezes the reference application (opt-in) into a firmware image: include this after the
# client's manifest.py, once `make build` has put the pinned umqtt.simple in build/vendor; copy
# app.py (this folder's) to the board as /app.py. Stock ESP32 firmware already freezes a newer
# umqtt.simple, which the app works with too (mqtt_status.py).
package("client_fw/apps", files=("__init__.py", "mqtt_status.py", "tlsconf.py"),
        base_path="../..")
module("ussl.py")
package("umqtt", files=("simple.py",), base_path="../../build/vendor")
