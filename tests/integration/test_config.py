"""The command line and config checking (docs/reference.md: Command line and signals; Configuration): `-c`
accepts a valid file and refuses a bad one with `FILE:LINE: what` on stderr;
starting with a bad file fails fast; `-V` and `-h`."""

import os
import re
import subprocess
import unittest

import harness

GOOD = """\
[global]
workers = 2
stats_socket = {tmp}/stats.sock
log = off
shutdown_timeout = 2s

[listener web]
bind = 127.0.0.1:{port}
pool = p
mode = http

[pool p]
scheduler = roundrobin
server = a 127.0.0.1:{p1}
server = b 127.0.0.1:{p2} weight=2
connect_timeout = 1s
retries = 2
health = none
"""

# The example of docs/reference.md: Configuration, every key, with local paths and ports.
REFERENCE_EXAMPLE = """\
[global]
workers = auto              ; worker threads; auto = number of CPUs
maxconn = 100000            ; over this, accepting pauses (nothing is refused)
stats_socket = {tmp}/stats.sock
stats_http = 127.0.0.1:{port2} ; optional: /metrics, /stats.json, /
log = stderr                ; stderr | off | a file path
shutdown_timeout = 10s

[listener web]
bind = 127.0.0.1:{port}     ; repeatable
bind = 127.0.0.1:{port3}
pool = php
mode = http                 ; tcp (default) | http - see section 5

[listener raw]
bind = 127.0.0.1:{port4}
pool = php

[pool php]
scheduler = roundrobin      ; roundrobin | leastconn | source | random2
server = web1 127.0.0.1:{p1} weight=1
server = web2 127.0.0.1:{p2} weight=2 maxconn=64
server = web3 127.0.0.1:{p3}
server = web4 [::1]:{p1}
server = web5 localhost:{p2}
persist = none              ; none | source  (stick table, section 4)
persist_timeout = 30m
balance_factor = 0          ; bounded-load cap for scheduler=source, percent
connect_timeout = 2s
server_timeout = 60s
idle_timeout = 5m
retries = 2
queue_timeout = 5s
health = tcp                ; tcp | http | none
health_path = /health       ; for health = http: any 2xx/3xx is healthy
health_interval = 2s
health_timeout = 1s
rise = 2
fall = 3

[pool other]
scheduler = roundrobin
health_interval = 500ms
health_timeout = 250        ; a bare number is milliseconds
connect_timeout = 1h
"""


# Every scheduler and persistence mode of docs/reference.md: Scheduling.
SCHEDULERS = """\
[global]
workers = 1
stats_socket = {tmp}/stats.sock
log = off

[listener web]
bind = 127.0.0.1:{port}
pool = rr

[pool rr]
scheduler = roundrobin
server = a 127.0.0.1:{p1}

[pool lc]
scheduler = leastconn
server = a 127.0.0.1:{p1}
health = http

[pool r2]
scheduler = random2
server = a 127.0.0.1:{p1}
persist = source

[pool src]
scheduler = source
server = a 127.0.0.1:{p1}
balance_factor = 125
"""


class ConfigTest(harness.TcplbTestCase):

    def setUp(self):
        super().setUp()
        self.bin = harness.require_bin()
        self.ports = {'port': harness.free_port(), 'port2': harness.free_port(),
                      'port3': harness.free_port(), 'port4': harness.free_port(),
                      'p1': harness.free_port(), 'p2': harness.free_port(),
                      'p3': harness.free_port()}

    def write(self, text, name='tcplb.ini'):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(text.format(tmp=self.tmp, **self.ports))
        return path

    def run_bin(self, *args):
        return subprocess.run([self.bin] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=10)

    def check(self, path):
        return self.run_bin('-c', '-f', path)

    def good_text(self):
        return GOOD.format(tmp=self.tmp, **self.ports)

    def assert_error_at(self, path, lines, proc):
        """proc failed and its stderr has `PATH:LINE: message` for one of lines."""
        self.assertNotEqual(proc.returncode, 0, 'accepted: %s' % proc.stderr)
        pat = r'^%s:(%s): \S' % (re.escape(path), '|'.join(map(str, lines)))
        self.assertRegex(proc.stderr, re.compile(pat, re.M),
                         'expected %s:%s: ... on stderr' % (path, lines))

    def bad_config(self, old, new):
        """GOOD with line `old` replaced by `new` (which may span lines);
        returns (path, line number of new's first line)."""
        text = self.good_text()
        lines = text.split('\n')
        idx = lines.index(old.format(tmp=self.tmp, **self.ports))
        new_lines = new.format(tmp=self.tmp, **self.ports).split('\n')
        lines[idx:idx + 1] = new_lines
        path = os.path.join(self.tmp, 'bad.ini')
        with open(path, 'w') as f:
            f.write('\n'.join(lines))
        return path, idx + 1

    # -- valid files

    def test_check_good_file_exits_0(self):
        path = self.write(GOOD)
        p = self.check(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'stats.sock')),
                         '-c must not start serving')

    def test_check_reference_example_with_every_key_exits_0(self):
        p = self.check(self.write(REFERENCE_EXAMPLE))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_check_every_scheduler_is_known(self):
        p = self.check(self.write(SCHEDULERS))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_check_pool_without_servers_is_valid(self):
        text = GOOD.replace('server = a 127.0.0.1:{p1}\n', '') \
                   .replace('server = b 127.0.0.1:{p2} weight=2\n', '')
        p = self.check(self.write(text))
        self.assertEqual(p.returncode, 0, p.stderr)

    # -- invalid files: each names the right line

    def test_unknown_key_names_its_line(self):
        for after in ('workers = 2', 'mode = http', 'retries = 2'):
            with self.subTest(section_with=after):
                path, line = self.bad_config(after, after + '\nfrobnicate = 1')
                self.assert_error_at(path, [line + 1], self.check(path))

    def test_unknown_scheduler_names_its_line(self):
        path, line = self.bad_config('scheduler = roundrobin', 'scheduler = fastest')
        self.assert_error_at(path, [line], self.check(path))

    def test_bad_server_address_names_its_line(self):
        path, line = self.bad_config('server = a 127.0.0.1:{p1}',
                                     'server = a 127.0.0.1:99999')
        self.assert_error_at(path, [line], self.check(path))

    def test_duplicate_server_name_names_the_second_line(self):
        path, line = self.bad_config('server = b 127.0.0.1:{p2} weight=2',
                                     'server = a 127.0.0.1:{p2} weight=2')
        self.assert_error_at(path, [line], self.check(path))

    def test_listener_with_missing_pool_names_the_pool_key_line(self):
        path, line = self.bad_config('pool = p', 'pool = nosuchpool')
        self.assert_error_at(path, [line], self.check(path))

    def test_bad_duration_names_its_line(self):
        path, line = self.bad_config('connect_timeout = 1s',
                                     'connect_timeout = 5parsecs')
        self.assert_error_at(path, [line], self.check(path))

    def test_unknown_section_names_its_line(self):
        # inih reports a section through its first key unless built to call
        # the handler on section headers: either line is right.
        path, line = self.bad_config('health = none',
                                     'health = none\n\n[frobnicate x]\nkey = 1')
        self.assert_error_at(path, [line + 2, line + 3], self.check(path))

    def test_syntax_error_names_its_line(self):
        path, line = self.bad_config('retries = 2',
                                     'retries = 2\nthis line has no equals sign')
        self.assert_error_at(path, [line + 1], self.check(path))

    # -- running

    def test_start_with_bad_file_exits_nonzero_quickly(self):
        path, line = self.bad_config('scheduler = roundrobin', 'scheduler = fastest')
        out_path = os.path.join(self.tmp, 'out')
        with open(out_path, 'w') as out:
            proc = subprocess.Popen([self.bin, '-f', path], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            self.fail('tcplb still running 5 s after start with a bad config')
        with open(out_path) as f:
            output = f.read()
        proc_result = subprocess.CompletedProcess(proc.args, rc, '', output)
        self.assert_error_at(path, [line], proc_result)
        self.assertFalse(harness.is_listening(self.ports['port']))

    def test_version_flag_prints_version_and_exits_0(self):
        p = self.run_bin('-V')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r'\d', 'no version on stdout')

    def test_help_flag_prints_usage(self):
        p = self.run_bin('-h')
        self.assertIn('-f', p.stdout + p.stderr)


if __name__ == '__main__':
    unittest.main()
