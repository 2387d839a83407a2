# The box's bounded tables under CPython: server nonces and sessions (single use, expiring,
# bounded) and the lockout accounting (growing back-off, capped, bounded per-station memory).
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from configurator_fw import lockout
from configurator_fw.nonces import Table

CAP, TTL, PER = 4, 60, 2


class Nonces(RuleBasedStateMachine):
    """The table against a plain model: what it gives back, when, and how much it holds."""

    def __init__(self):
        super().__init__()
        self.t = Table(CAP, TTL, PER)
        self.now = 1000
        self.model = {}  # key -> (made, value, owner)
        self.n = 0

    def live(self):
        return {k: e for k, e in self.model.items() if self.now - e[0] < TTL}

    @rule(dt=st.integers(0, 90))
    def time_passes(self, dt):
        self.now += dt

    @rule(owner=st.sampled_from(["s1", "s2", "s3"]))
    def add(self, owner):
        self.n += 1
        key, value = b"k%d" % self.n, ("dev", self.n)
        self.t.add(key, value, self.now, owner)
        # the model: expired entries go; the owner's oldest gives way past its quota, then the
        # table's oldest when full; the new entry always gets in
        live = self.live()
        mine = sorted((e[0], self.n_of(k), k) for k, e in live.items() if e[2] == owner)
        while len(mine) >= PER:
            live.pop(mine.pop(0)[2])
        if len(live) >= CAP:
            live.pop(min((e[0], self.n_of(k), k) for k, e in live.items())[2])
        live[key] = (self.now, value, owner)
        self.model = live

    @staticmethod
    def n_of(key):
        return int(key[1:])

    @rule(data=st.data())
    def take(self, data):
        keys = sorted(self.model) + [b"never issued"]
        key = data.draw(st.sampled_from(keys))
        want = self.live().get(key)
        assert self.t.take(key, self.now) == (want[1] if want else None)
        self.model.pop(key, None)
        assert self.t.take(key, self.now) is None  # single use

    @rule(data=st.data())
    def get(self, data):
        if self.model:
            key = data.draw(st.sampled_from(sorted(self.model)))
            want = self.live().get(key)
            assert self.t.get(key, self.now) == (want[1] if want else None)

    @invariant()
    def bounded(self):
        assert len(self.t) <= CAP
        held = {k for k in self.t._d if self.t.get(k, self.now) is not None}
        assert held == set(self.live())  # exactly the model's live entries


TestNonces = Nonces.TestCase
TestNonces.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_clock_going_backwards_does_not_revive_or_extend_a_nonce():
    t = Table(2, 60)
    t.add(b"a", 1, 1000)
    assert t.get(b"a", 999) is None  # made "in the future": not trusted
    assert t.take(b"a", 1060) is None


@given(st.integers(0, 40), st.integers(1, 10), st.integers(0, 2**31))
def test_lock_after_grows_doubles_and_caps(fails, threshold, now):
    until = lockout.lock_after(fails, threshold, now)
    if fails < threshold:
        assert until == 0
        return
    wait = until - now
    assert wait == min(lockout.CAP, lockout.BASE * 2 ** (fails - threshold))
    assert lockout.lock_after(fails + 1, threshold, now) - now >= wait  # never shrinks
    assert lockout.retry_after(until, now) == wait
    assert lockout.retry_after(until, until) == 0


def test_the_lockout_thresholds_are_the_documented_ones():
    # docs/PROTOCOL.md s.5: a device id after 5 failures, a station after 10, 30 s to 1 h
    assert (lockout.DEVICE_THRESHOLD, lockout.STATION_THRESHOLD) == (5, 10)
    assert (lockout.BASE, lockout.CAP) == (30, 3600)
    s = lockout.Parties(lockout.STATION_THRESHOLD)
    for i in range(200):
        s.fail("10.0.%d.1" % i, 0)
    assert len(s._d) == 64  # bounded by default


def test_device_lock_schedule():
    waits = [lockout.lock_after(f, lockout.DEVICE_THRESHOLD, 0) for f in range(1, 14)]
    assert waits == [0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


# bursts of failures from one address (so some reach the lock) among many addresses
bursts = st.lists(st.tuples(st.integers(0, 40), st.integers(1, 12), st.integers(0, 20)),
                  max_size=40)


@given(bursts, st.integers(1, 30))
def test_stations_bounded_and_a_flood_never_frees_a_locked_one(events, flood):
    s = lockout.Parties(lockout.STATION_THRESHOLD, cap=8)
    now = 0
    for addr, n, dt in events:
        now += dt
        for _ in range(n):
            s.fail("10.0.0.%d" % addr, now)
            assert len(s._d) <= 8
    locked = [a for a in s._d if s.locked(a, now)]
    for i in range(flood):  # fresh addresses, one failure each
        s.fail("10.9.9.%d" % i, now)
        assert len(s._d) <= 8
    if len(locked) < 8:  # an unlocked entry was there to evict first
        assert all(s.locked(a, now) for a in locked), locked


def test_station_locks_after_threshold_and_clears_on_success():
    s = lockout.Parties(lockout.STATION_THRESHOLD)
    for _ in range(lockout.STATION_THRESHOLD - 1):
        s.fail("a", 100)
    assert s.locked("a", 100) == 0
    s.fail("a", 100)
    assert s.locked("a", 100) == lockout.BASE
    assert s.locked("a", 100 + lockout.BASE) == 0
    s.fail("a", 200)
    assert s.locked("a", 200) == 2 * lockout.BASE  # the count goes on after the lock ends
    s.ok("a")
    assert s.locked("a", 200) == 0
