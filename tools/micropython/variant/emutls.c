// Host emulation, test interpreter only (never a board's): the C side of mbedTLS as on an ESP32
// (see mbedtls_config_esp32like.h). Module `emutls`:
//   heap() -> (bytes in use, peak)   mbedTLS's C-heap use since start or reset_peak()
//   reset_peak()                     the peak starts again from what is in use now
//   limit(n)                         refuse allocations past n bytes in use (0: no cap), as a
//                                    board's IDF heap would; mbedTLS then fails with ENOMEM
//   time_source(f)                   f() -> Unix seconds: the board clock mbedTLS checks
//                                    certificate dates against (None: the host's clock)
#include <stdlib.h>
#include <time.h>

#include "py/nlr.h"
#include "py/obj.h"
#include "py/runtime.h"

static size_t in_use, peak, cap;

// a header of two words before each block keeps 8-byte alignment on the 32-bit build
void *emutls_calloc(size_t nmemb, size_t size) {
    if (size && nmemb > ((size_t)-1 - 2 * sizeof(size_t)) / size) {
        return NULL;
    }
    size_t bytes = nmemb * size;
    if (cap && in_use + bytes > cap) {
        return NULL;
    }
    size_t *block = calloc(1, 2 * sizeof(size_t) + bytes);
    if (block == NULL) {
        return NULL;
    }
    block[0] = bytes;
    in_use += bytes;
    if (in_use > peak) {
        peak = in_use;
    }
    return block + 2;
}

void emutls_free(void *ptr) {
    if (ptr == NULL) {
        return;
    }
    size_t *block = (size_t *)ptr - 2;
    in_use -= block[0];
    free(block);
}

MP_REGISTER_ROOT_POINTER(mp_obj_t emutls_time_source);

time_t emutls_time(time_t *timer) {
    time_t now = time(NULL);
    mp_obj_t source = MP_STATE_VM(emutls_time_source);
    if (source != MP_OBJ_NULL && source != mp_const_none) {
        nlr_buf_t nlr;
        if (nlr_push(&nlr) == 0) {
            now = (time_t)mp_obj_get_int(mp_call_function_0(source));
            nlr_pop();
        }
    }
    if (timer) {
        *timer = now;
    }
    return now;
}

static mp_obj_t emutls_heap(void) {
    mp_obj_t out[2] = {mp_obj_new_int_from_uint(in_use), mp_obj_new_int_from_uint(peak)};
    return mp_obj_new_tuple(2, out);
}
static MP_DEFINE_CONST_FUN_OBJ_0(emutls_heap_obj, emutls_heap);

static mp_obj_t emutls_reset_peak(void) {
    peak = in_use;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(emutls_reset_peak_obj, emutls_reset_peak);

static mp_obj_t emutls_limit(mp_obj_t n) {
    cap = mp_obj_get_int(n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emutls_limit_obj, emutls_limit);

static mp_obj_t emutls_set_time_source(mp_obj_t f) {
    MP_STATE_VM(emutls_time_source) = f;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emutls_time_source_obj, emutls_set_time_source);

static const mp_rom_map_elem_t emutls_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emutls) },
    { MP_ROM_QSTR(MP_QSTR_heap), MP_ROM_PTR(&emutls_heap_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset_peak), MP_ROM_PTR(&emutls_reset_peak_obj) },
    { MP_ROM_QSTR(MP_QSTR_limit), MP_ROM_PTR(&emutls_limit_obj) },
    { MP_ROM_QSTR(MP_QSTR_time_source), MP_ROM_PTR(&emutls_time_source_obj) },
};
static MP_DEFINE_CONST_DICT(emutls_globals, emutls_globals_table);

const mp_obj_module_t emutls_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emutls_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emutls, emutls_module);
