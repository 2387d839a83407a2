# Client entry point: check with the box when due, free the provisioning RAM, then start the
# application with a reader of the stored config and this boot's state, whatever happened.
import gc

status = None
try:
    from client_fw.device import Device, release

    try:
        from shared.board import Board

        status = Device(Board()).check()
    finally:
        release()  # the provisioning code goes, whatever the check did
        del Device, release
except Exception as e:  # noqa: BLE001 - MemoryError, a hostile box: the app starts regardless
    status = "check failed (%s)" % (type(e).__name__,)
print("cfgbox:", status)
gc.collect()
config = None
for _ in range(2):  # a reader that could not be made for lack of memory gets one more try
    try:
        from client_fw.appconfig import Config
        from shared.board import Board

        config = Config(Board(), status)
        break
    except Exception as e:  # noqa: BLE001
        print("cfgbox: config reader failed:", repr(e))
        gc.collect()
if config:
    print("cfgbox: config", config.state, config.version)
try:
    import app
except ImportError as e:
    print("cfgbox: no app:", e)
else:
    app.main(config)  # None only when not even the reader could be made
