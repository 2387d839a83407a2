# Client entry point: check with the box when due, free the provisioning RAM, start the app.
import gc

from client_fw.device import Device, release
from shared.board import Board

device = Device(Board())
try:  # the application starts with the last good config, whatever the box or radio did
    print("cfgbox:", device.check())
except Exception as e:  # noqa: BLE001
    print("cfgbox: check failed:", repr(e))
config = device.load_config()
release()
del device, Device, Board, release
gc.collect()
try:
    import app
except ImportError:
    print("cfgbox: no app.py; config", "present" if config else "absent")
else:
    app.main(config)
