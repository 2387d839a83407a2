# A byte stream for the vector tests on both interpreters: ``src(buf) -> n`` over ``data``,
# at most ``step`` bytes a call (to cut records and values at every place).


def source(data, step=1 << 30):
    pos = [0]
    mv = memoryview(data)

    def read(buf):
        n = min(len(buf), step, len(data) - pos[0])
        buf[:n] = mv[pos[0] : pos[0] + n]
        pos[0] += n
        return n

    return read
