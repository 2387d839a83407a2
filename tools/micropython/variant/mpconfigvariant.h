// Unix-port variant configured like the ESP32 port: the interpreter our firmware tests run on.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#include "../mpconfigvariant_common.h"

// The ESP32 port's cryptolib has ECB (mode 1) and CBC (mode 2) only, and no MODE_* constants.
#define MICROPY_PY_CRYPTOLIB_CTR (0)
#define MICROPY_PY_CRYPTOLIB_CONSTS (0)

// asyncio's C helper (_asyncio) reads the host's own ticks; the board emulation's clock is the
// test's (host_tests/emu/time.py), so asyncio runs on its Python TaskQueue (asyncio/task.py).
#define MICROPY_PY_ASYNCIO (0)

// The heap in areas, as the ESP32 port grows it (ports/esp32/mpconfigport.h): a first area of
// the board's initial size, then areas added on demand from a budget standing for the IDF heap
// (emuheap.c). The harness gives the first area with -X heapsize and the rest with
// emuheap.budget() before the firmware runs.
#include <stddef.h>
#define MICROPY_GC_SPLIT_HEAP (1)
#define MICROPY_GC_SPLIT_HEAP_AUTO (1)
void *emuheap_alloc(size_t size);
void emuheap_free(void *area);
#define MP_PLAT_ALLOC_HEAP(size) emuheap_alloc(size)
#define MP_PLAT_FREE_HEAP(area) emuheap_free(area)
