# Freezes the box's firmware into a MicroPython firmware image, where its bytecode costs no heap
# (the way to run the box on a 110 KB ESP32; README): add
# include("PATH/TO/THIS/REPO/configurator_fw/manifest.py") to your board's manifest, after
# `make build` (which puts the pinned microdot in build/vendor). main.py stays on the board.
package("configurator_fw", files=("__init__.py", "admin.py", "admin_web.py", "api.py", "app.py",
                                  "audit.py", "box.py", "compose.py", "lockout.py", "log.py",
                                  "nonces.py", "page.py", "server.py", "sessions.py", "store.py",
                                  "store_devices.py", "store_overrides.py", "store_secrets.py",
                                  "store_state.py", "store_status.py", "timekeeper.py",
                                  "vault.py"), base_path="..")
package("shared", files=("__init__.py", "base32.py", "board.py", "clock.py", "config.py", "ct.py",
                         "hkdf.py", "mac.py", "otp.py", "otpauth.py", "passphrase.py", "pbkdf2.py",
                         "protocol.py", "records.py", "sealedbox.py"), base_path="..")
package("microdot", files=("__init__.py", "microdot.py", "helpers.py"),
        base_path="../build/vendor")
