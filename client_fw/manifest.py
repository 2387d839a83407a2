# Freezes the client into a MicroPython firmware image, where its bytecode costs no heap: add
# include("PATH/TO/THIS/REPO/client_fw/manifest.py") to your board's manifest and build. main.py
# stays on the board's filesystem. Exactly the modules the client imports (host_tests check it).
options.defaults(shared=True)

package("client_fw", files=("__init__.py", "appconfig.py", "bootstrap.py", "device.py", "http.py",
                            "provision.py", "storage.py", "wlan.py"), base_path="..")
if options.shared:  # off where the box's manifest froze the (larger) shared set already
    package("shared", files=("__init__.py", "board.py", "clock.py", "ct.py", "hkdf.py", "mac.py",
                             "otp.py", "protocol.py", "records.py", "sealedbox.py"),
            base_path="..")
