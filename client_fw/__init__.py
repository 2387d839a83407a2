# The client device library and boot flow.
FW_VERSION = "1.1.0"  # reported to the box (ack) and in the application status
