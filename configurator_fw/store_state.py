# What the box's NVS keeps of its store's state (docs/STORE.md, "Copied back"): NVS is another
# partition than the store's files, durable at each set, so files put back into LittleFS leave
# it as the box last wrote it.
_NS = "cfgstore"


def nvs_get(board, key):
    """What this box's NVS keeps under ``key``: "rev" the highest store state it wrote, "top"
    the highest TOTP step it accepted (None: none kept, or a board without NVS: the host's
    tools, whose store is flashed to the box whole)."""
    try:
        return board.nvs(_NS).get_i32(key)
    except (AttributeError, ImportError, OSError):
        return None


def nvs_set(board, key, value):
    try:
        nvs = board.nvs(_NS)
        if nvs_get(board, key) != value:
            nvs.set_i32(key, value)
            nvs.commit()
    except (AttributeError, ImportError, OSError):
        pass
