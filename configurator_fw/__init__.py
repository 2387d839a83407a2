# The configurator box's firmware.
