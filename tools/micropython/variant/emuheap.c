// Host emulation, test interpreter only (never a board's): the ESP32 port's heap in areas.
// The port allocates a first GC area of MICROPY_GC_INITIAL_HEAP_SIZE (56 KB on the ESP32,
// ports/esp32/mpconfigport.h) and, with MICROPY_GC_SPLIT_HEAP_AUTO, adds areas on demand
// (py/gc.c gc_try_add_heap) taken from the IDF heap: gc_get_max_new_split() returns its largest
// free block (ports/esp32/main.c), MP_PLAT_ALLOC_HEAP is malloc, and an area that a collection
// leaves empty goes back (gc_sweep_free_blocks, MP_PLAT_FREE_HEAP). An object never spans two
// areas. Here the IDF heap the GC may grow into is a budget set at boot. Module `emuheap`:
//   budget(total, block)   the GC may add areas of at most `block` bytes each, `total` in all
//   areas() -> [bytes, ...] the size of each added area now held (the first one not included)
#include <stdlib.h>

#include "py/gc.h"
#include "py/obj.h"
#include "py/runtime.h"

static size_t left, block_max;
static void *area_at[8];
static size_t area_size[8];
static size_t n_added;

size_t gc_get_max_new_split(void) {
    return left < block_max ? left : block_max;
}

void *emuheap_alloc(size_t size) {
    if (size > gc_get_max_new_split() || n_added == MP_ARRAY_SIZE(area_at)) {
        return NULL;
    }
    void *area = malloc(size);
    if (area != NULL) {
        left -= size;
        area_at[n_added] = area;
        area_size[n_added++] = size;
    }
    return area;
}

void emuheap_free(void *area) {
    for (size_t i = 0; i < n_added; i++) {
        if (area_at[i] == area) {
            left += area_size[i];
            n_added--;
            area_at[i] = area_at[n_added];
            area_size[i] = area_size[n_added];
            break;
        }
    }
    free(area);
}

static mp_obj_t emuheap_budget(mp_obj_t total, mp_obj_t block) {
    left = mp_obj_get_int(total);
    block_max = mp_obj_get_int(block);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emuheap_budget_obj, emuheap_budget);

static mp_obj_t emuheap_areas(void) {
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (size_t i = 0; i < n_added; i++) {
        mp_obj_list_append(list, mp_obj_new_int_from_uint(area_size[i]));
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_0(emuheap_areas_obj, emuheap_areas);

static const mp_rom_map_elem_t emuheap_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emuheap) },
    { MP_ROM_QSTR(MP_QSTR_budget), MP_ROM_PTR(&emuheap_budget_obj) },
    { MP_ROM_QSTR(MP_QSTR_areas), MP_ROM_PTR(&emuheap_areas_obj) },
};
static MP_DEFINE_CONST_DICT(emuheap_globals, emuheap_globals_table);

const mp_obj_module_t emuheap_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emuheap_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emuheap, emuheap_module);
