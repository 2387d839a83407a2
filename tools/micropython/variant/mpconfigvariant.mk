# Unix-port variant configured like the ESP32 port (see mpconfigvariant.h).
# FROZEN_MANIFEST is set here, not on make's command line, so the mpy-cross sub-build is unaffected.
FROZEN_MANIFEST = $(VARIANT_DIR)/manifest.py
# The ESP32 builds we target have no btree, and no board has ffi.
MICROPY_PY_BTREE = 0
MICROPY_PY_FFI = 0
