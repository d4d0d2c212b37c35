#!/usr/bin/env python3
"""run.py -- runs the integration suite (or another python suite) against DIR/tcplb.

    python3 tests/integration/run.py --build build [--dir tests/chaos] [-k PATTERN] [-q]
                                     [-j JOBS]

Discovers SUITE/test_*.py (SUITE is --dir, by default tests/integration),
runs them with unittest, prints the tcplb output tail under each failure, and
ends with the line `NAME: N passed, N failed[, N skipped]` where NAME is the
suite directory's basename (`integration`, `chaos`). tests/integration is
always on sys.path, so every suite can `import harness`. Exit 0 only if none
failed.

-j JOBS (or TCPLB_TEST_JOBS) runs the test files in JOBS processes at once:
most tests wait on sockets and timers, not on the CPU, so two processes on
two cores take about half the time. Each process's output is printed whole
when it ends. The files in SERIAL run afterwards, alone, because what they
measure (real nginx + php-fpm under load, a VRRP failover) wants the
machine to itself."""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERIAL = ('test_lab', 'test_keepalived')
SUMMARY = re.compile(r'^\S+: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$')


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
    ap.add_argument('-j', '--jobs', type=int,
                    default=int(os.environ.get('TCPLB_TEST_JOBS', '1') or 1),
                    help='test files run in this many processes at once (default 1)')
    ap.add_argument('--label',
                    help='name on the closing line (default: the directory\'s)')
    ap.add_argument('--modules', help=argparse.SUPPRESS)   # a child's share
    args = ap.parse_args()

    suite_dir = os.path.abspath(args.dir)
    label = args.label or os.path.basename(suite_dir.rstrip(os.sep)) or 'tests'
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

    if args.jobs > 1 and args.modules is None:
        return run_parallel(args, suite_dir, label)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if '*' in p else '*%s*' % p
                                   for p in args.patterns]
    if args.modules is not None:
        suite = unittest.TestSuite(loader.loadTestsFromName(m)
                                   for m in args.modules.split(',') if m)
    else:
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
    # a child's line must not read as the suite's (run_all.sh adds those up)
    name = label + '-share' if args.modules is not None else label
    line = '%s: %d passed, %d failed' % (name, passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    sys.stdout.flush()
    sys.stderr.flush()
    print('(%.1fs)' % (time.monotonic() - t0))
    print(line, flush=True)
    return 0 if failed == 0 else 1


def run_parallel(args, suite_dir, label):
    """Splits the suite's files over args.jobs child processes (by size, the
    largest first, each to the lightest share), then runs SERIAL alone, and
    adds up their closing lines."""
    modules = sorted(f[:-3] for f in os.listdir(suite_dir)
                     if f.startswith('test_') and f.endswith('.py'))
    serial = [m for m in modules if m in SERIAL]
    shares = [[] for _ in range(args.jobs)]
    weights = [0] * args.jobs
    for m in sorted((m for m in modules if m not in SERIAL),
                    key=lambda m: -os.path.getsize(os.path.join(suite_dir, m + '.py'))):
        k = weights.index(min(weights))
        shares[k].append(m)
        weights[k] += os.path.getsize(os.path.join(suite_dir, m + '.py'))
    base = [sys.executable, os.path.abspath(__file__), '--build', args.build,
            '--dir', suite_dir] + (['-q'] if args.quiet else [])
    for p in args.patterns:
        base += ['-k', p]
    t0 = time.monotonic()
    totals = [0, 0, 0]
    rc = 0

    def account(text, code):
        nonlocal rc
        sys.stdout.write(text)
        sys.stdout.flush()
        last = [ln for ln in text.splitlines() if SUMMARY.match(ln)]
        if not last:
            totals[1] += 1              # a child that died says nothing
            rc = 1
            return
        m = SUMMARY.match(last[-1])
        for i in range(3):
            totals[i] += int(m.group(i + 1) or 0)
        if code != 0:
            rc = 1

    children = []
    for share in shares:
        if not share:
            continue
        out = tempfile.TemporaryFile(mode='w+')
        children.append((subprocess.Popen(base + ['--modules', ','.join(share)],
                                          stdout=out, stderr=subprocess.STDOUT), out))
    for proc, out in children:
        code = proc.wait()
        out.seek(0)
        account(out.read(), code)
        out.close()
    if serial:
        proc = subprocess.run(base + ['--modules', ','.join(serial)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        account(proc.stdout, proc.returncode)
    line = '%s: %d passed, %d failed' % (label, totals[0], totals[1])
    if totals[2]:
        line += ', %d skipped' % totals[2]
    print('(%.1fs in all, %d processes)' % (time.monotonic() - t0, len(children)))
    print(line, flush=True)
    return 0 if rc == 0 and totals[1] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
