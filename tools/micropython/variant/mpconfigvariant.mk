# Unix-port variant configured like the ESP32 port (see mpconfigvariant.h).
# FROZEN_MANIFEST is set here, not on make's command line, so the mpy-cross sub-build is unaffected.
FROZEN_MANIFEST = $(VARIANT_DIR)/manifest.py
# 32-bit words and pointers, as on the ESP32's Xtensa: heap sizes are real bytes.
MICROPY_FORCE_32BIT = 1
# The ESP32 builds we target have no btree, and no board has ffi.
MICROPY_PY_BTREE = 0
MICROPY_PY_FFI = 0
# LittleFS v2 is what the port formats its flash with (the unix port enables it by default too).
MICROPY_VFS_LFS2 = 1
# mbedTLS as on the ESP32: C-heap memory (counted) and the board's clock for certificate dates
# (mbedtls_config_esp32like.h, emutls.c: host emulation, test interpreter only).
MBEDTLS_CONFIG_FILE = \"mbedtls_config_esp32like.h\"
# py/gc.c's split heap (gc_try_add_heap) does arithmetic on a void pointer, which the ESP32
# port's compiler flags allow and the unix port's -Wpointer-arith refuses.
CFLAGS_EXTRA += -Wno-pointer-arith
