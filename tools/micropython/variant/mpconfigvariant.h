// Unix-port variant configured like the ESP32 port: the interpreter our firmware tests run on.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#include "../mpconfigvariant_common.h"

// The ESP32 port's cryptolib has ECB (mode 1) and CBC (mode 2) only, and no MODE_* constants.
#define MICROPY_PY_CRYPTOLIB_CTR (0)
#define MICROPY_PY_CRYPTOLIB_CONSTS (0)
