# Test harness only — never copied to a board. The subset of unittest our shared test files use,
# for the MicroPython unix port (its micropython-lib copy is stripped from Debian's source).


class SkipTest(Exception):  # noqa: N818 - the unittest name
    pass


class _Raises:
    def __init__(self, exc):
        self.expected = exc
        self.exception = None

    def __enter__(self):
        return self

    def __exit__(self, typ, val, tb):
        if typ is None:
            raise AssertionError("%s not raised" % self.expected.__name__)
        if issubclass(typ, self.expected):
            self.exception = val
            return True
        return False


class TestCase:
    def setUp(self):
        pass

    def tearDown(self):
        pass

    def fail(self, msg=None):
        raise AssertionError(msg or "fail")

    def assertEqual(self, a, b, msg=None):
        if not a == b:
            raise AssertionError(msg or "%r != %r" % (a, b))

    def assertNotEqual(self, a, b, msg=None):
        if a == b:
            raise AssertionError(msg or "%r == %r" % (a, b))

    def assertTrue(self, x, msg=None):
        if not x:
            raise AssertionError(msg or "%r is not true" % (x,))

    def assertFalse(self, x, msg=None):
        if x:
            raise AssertionError(msg or "%r is not false" % (x,))

    def assertIs(self, a, b, msg=None):
        if a is not b:
            raise AssertionError(msg or "%r is not %r" % (a, b))

    def assertIsNone(self, x, msg=None):
        self.assertIs(x, None, msg)

    def assertIn(self, a, b, msg=None):
        if a not in b:
            raise AssertionError(msg or "%r not in %r" % (a, b))

    def assertRaises(self, exc, func=None, *args, **kw):
        ctx = _Raises(exc)
        if func is None:
            return ctx
        with ctx:
            func(*args, **kw)
        return None


def main(module="__main__"):
    raise SystemExit("run tests through host_tests/upy/run.py")
