# A board's app.py for the reference application: main.py calls main(config) after its check.
from client_fw.apps.mqtt_status import main  # noqa: F401
