# Test harness only. Runs the unittest TestCases of the named modules under MicroPython and prints
# one line per test ("ok NAME", "FAIL NAME: why", "skip NAME: why") and a closing count line.
# Usage: micropython run.py MODULE [MODULE...]
import sys

import unittest


def run(modname):
    mod = __import__(modname)
    passed = failed = skipped = 0
    for cname in sorted(dir(mod)):
        cls = getattr(mod, cname)
        if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
            continue
        for tname in sorted(dir(cls)):
            if not tname.startswith("test"):
                continue
            name = "%s.%s.%s" % (modname, cname, tname)
            case = cls()
            try:
                case.setUp()
                try:
                    getattr(case, tname)()
                finally:
                    case.tearDown()
                print("ok", name)
                passed += 1
            except unittest.SkipTest as e:
                print("skip %s: %s" % (name, e))
                skipped += 1
            except Exception as e:  # noqa: BLE001 - report every failure, keep going
                print("FAIL %s: %s %s" % (name, type(e).__name__, e))
                sys.print_exception(e)
                failed += 1
    return passed, failed, skipped


def main():
    import shared.mac

    print("# shared loaded from", shared.mac.__file__)
    totals = [0, 0, 0]
    for m in sys.argv[1:]:
        for i, n in enumerate(run(m)):
            totals[i] += n
    print("%d passed, %d failed, %d skipped" % tuple(totals))
    sys.exit(1 if totals[1] or not totals[0] else 0)


main()
