#!/usr/bin/env python3
"""run.py -- runs the integration suite (or another python suite) against DIR/tcplb.

    python3 tests/integration/run.py --build build [--dir tests/chaos] [-k PATTERN] [-q]

Discovers SUITE/test_*.py (SUITE is --dir, by default tests/integration),
runs them with unittest, prints the tcplb output tail under each failure, and
ends with the line `NAME: N passed, N failed[, N skipped]` where NAME is the
suite directory's basename (`integration`, `chaos`). tests/integration is
always on sys.path, so every suite can `import harness`. Exit 0 only if none
failed."""

import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class Result(unittest.TextTestResult):
    """Appends the failing test's tcplb output to its traceback. Python 3.11
    reports a failure as it happens, while tcplb still runs and its files
    exist; after cleanup the test keeps a snapshot instead."""

    def _exc_info_to_string(self, err, test):
        text = super()._exc_info_to_string(err, test)
        diag = getattr(test, 'tcplb_diagnostics', None)
        if callable(diag):
            try:
                extra = diag()
            except Exception as e:          # never hide the real failure
                extra = '(no tcplb output: %r)' % e
            if extra and extra not in text:
                text += '\n' + extra + '\n'
        return text

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def addSuccess(self, test):
        if self.showAll:
            self.stream.write('(%.1fs) ' % (time.monotonic() - self._t0))
        super().addSuccess(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build',
                    help='directory holding tcplb (default: build)')
    ap.add_argument('--dir', default=HERE,
                    help='suite directory holding test_*.py '
                         '(default: tests/integration)')
    ap.add_argument('-k', dest='patterns', action='append', default=[],
                    help='only tests whose module.Class.method matches '
                         '(substring or fnmatch pattern; repeatable)')
    ap.add_argument('-q', '--quiet', action='store_true',
                    help='one character per test instead of one line')
    args = ap.parse_args()

    suite_dir = os.path.abspath(args.dir)
    label = os.path.basename(suite_dir.rstrip(os.sep)) or 'tests'
    if not os.path.isdir(suite_dir):
        print('%s: no such directory: %s' % (label, suite_dir), flush=True)
        print('%s: 0 passed, 1 failed' % label, flush=True)
        return 1
    binary = os.path.abspath(os.path.join(args.build, 'tcplb'))
    os.environ['TCPLB_BIN'] = binary
    if not os.access(binary, os.X_OK):
        print('%s: warning: %s not found or not executable; '
              'tests that need it will fail' % (label, binary), flush=True)
    sys.path.insert(0, HERE)
    if suite_dir != HERE:
        sys.path.insert(0, suite_dir)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if '*' in p else '*%s*' % p
                                   for p in args.patterns]
    suite = loader.discover(suite_dir, pattern='test_*.py', top_level_dir=suite_dir)

    runner = unittest.TextTestRunner(stream=sys.stdout, resultclass=Result,
                                     verbosity=1 if args.quiet else 2)
    t0 = time.monotonic()
    result = runner.run(suite)
    # A test counts once however many of its subtests failed; an error
    # outside any test (a class or module fixture) counts on its own.
    bad = set()
    for test, _ in result.failures + result.errors:
        bad.add(getattr(test, 'test_case', test).id())
    for test in result.unexpectedSuccesses:
        bad.add(test.id())
    failed = len(bad)
    skipped = len(result.skipped)
    passed = max(0, result.testsRun - failed - skipped -
                 len(result.expectedFailures))
    line = '%s: %d passed, %d failed' % (label, passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    sys.stdout.flush()
    sys.stderr.flush()
    print('(%.1fs)' % (time.monotonic() - t0))
    print(line, flush=True)
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
