# The client device's library and boot flow.
