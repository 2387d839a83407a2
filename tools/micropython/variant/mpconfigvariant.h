// Unix-port variant configured like the ESP32 port: the interpreter our firmware tests run on.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#include "../mpconfigvariant_common.h"

// The ESP32 port's cryptolib has ECB (mode 1) and CBC (mode 2) only, and no MODE_* constants.
#define MICROPY_PY_CRYPTOLIB_CTR (0)
#define MICROPY_PY_CRYPTOLIB_CONSTS (0)

// asyncio's C helper (_asyncio) reads the host's own ticks; the board emulation's clock is the
// test's (host_tests/emu/time.py), so asyncio runs on its Python TaskQueue (asyncio/task.py).
#define MICROPY_PY_ASYNCIO (0)
