# Host emulation — never copied to a board. The ESP32 `esp32.NVS` key-value store, persisted per
# emulated device. As on the board, writes become durable only at commit(), and reading an
# absent key raises OSError.
import emu_registry as reg

_ESP_ERR_NVS_NOT_FOUND = -0x1102


class NVS:
    def __init__(self, namespace):
        if not 0 < len(namespace) <= 15:
            raise ValueError("namespace")
        self._file = reg.ensure_dir("dev", reg.device(), "nvs") + "/" + namespace + ".json"
        self._data = reg.read_json(self._file, {})

    def _get(self, key, kind):
        item = self._data.get(key)
        if item is None or item[0] != kind:
            raise OSError(_ESP_ERR_NVS_NOT_FOUND)
        return item[1]

    def set_i32(self, key, value):
        if not -(2**31) <= value < 2**31:
            raise OverflowError("i32")
        self._data[key] = ["i32", value]

    def get_i32(self, key):
        return self._get(key, "i32")

    def set_blob(self, key, value):
        self._data[key] = ["blob", bytes(value).hex()]

    def get_blob(self, key, buf):
        raw = bytes.fromhex(self._get(key, "blob"))
        if len(buf) < len(raw):
            raise OSError(-0x1107)  # ESP_ERR_NVS_INVALID_LENGTH
        buf[: len(raw)] = raw
        return len(raw)

    def erase_key(self, key):
        if self._data.pop(key, None) is None:
            raise OSError(_ESP_ERR_NVS_NOT_FOUND)

    def commit(self):
        reg.write_json(self._file, self._data)
