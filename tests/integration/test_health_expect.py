"""health = expect (docs/configuration.md: `health`, `health_send`,
`health_expect`; docs/health.md; man/tcplb.ini.5: health_send,
health_expect): the check connects, sends health_send (nothing when it is
empty: the server speaks first), and passes when the first bytes answered
start with health_expect.

The backends are written here: a Redis-like server (`+PONG` to `PING`,
the rest echoed) whose answer can be switched to an error, a close,
silence or a split answer, and a banner server (SMTP-like). Each records
the bytes every connection brought, so a case asserts what the check
really sent. Reasons are read from `show events`. States are polled with
deadlines, never slept for."""

import os
import re
import shutil
import socket
import subprocess
import time
import unittest

import harness

INTERVAL = 0.1          # health_interval, seconds
TIMEOUT = 0.1           # health_timeout
SLACK = 0.8
# one failed check (fall = 1) takes at most an interval and a timeout
DOWN_WITHIN = INTERVAL + TIMEOUT + SLACK
CHECKS = dict(health='expect', health_interval='100ms', health_timeout='100ms',
              rise=1, fall=1)
REDIS = dict(CHECKS, health_send=r'PING\r\n', health_expect='+PONG')
TS = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'
PROXY_V2_SIG = b'\r\n\r\n\x00\r\nQUIT\n'


class RedisLikeBackend(harness.Backend):
    """Line by line: `PING` (any case, also inside a RESP array as
    redis-cli sends it) gets `+PONG\\r\\n`, RESP framing lines (`*N`,
    `$N`) and a PROXY v1 line nothing, any other line is echoed. `mode`
    changes what a PING gets: 'pong', 'err' (`-ERR unknown command`),
    'err-long' (an error of 60 bytes), 'close' (closed at once), 'short'
    (`+PO`, then closed), 'silent' (nothing, ever), 'split' (`+PO`, then
    `NG\\r\\n` 30 ms later). `received` lists every finished connection's
    bytes, in order."""

    def __init__(self, name='redis', mode='pong'):
        self.mode = mode
        self.received = []
        super().__init__(name)

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def serve(self, conn):
        got = bytearray()
        try:
            self.converse(conn, got)
        finally:
            with self.lock:
                self.received.append(bytes(got))

    def converse(self, conn, got):
        pending = b''
        while not self._stop.is_set():
            data = conn.recv(65536)
            if not data:
                return
            got += data
            pending += data
            if pending.startswith(PROXY_V2_SIG) and len(pending) >= 16:
                pending = pending[16 + int.from_bytes(pending[14:16], 'big'):]
            while b'\r\n' in pending:
                line, _, pending = pending.partition(b'\r\n')
                if line.startswith((b'PROXY ', b'*', b'$')):
                    continue
                if line.upper() != b'PING':
                    conn.sendall(line + b'\r\n')
                    continue
                with self.lock:
                    mode = self.mode
                if mode == 'pong':
                    conn.sendall(b'+PONG\r\n')
                elif mode == 'err':
                    conn.sendall(b'-ERR unknown command\r\n')
                elif mode == 'err-long':
                    conn.sendall(b'-ERR ' + b'x' * 53 + b'\r\n')
                elif mode == 'close':
                    return
                elif mode == 'short':
                    conn.sendall(b'+PO')
                    return
                elif mode == 'silent':
                    while not self._stop.is_set():
                        try:
                            data = conn.recv(65536)
                        except socket.timeout:
                            return
                        if not data:
                            return
                        got += data
                    return
                elif mode == 'split':
                    conn.sendall(b'+PO')
                    if self._stop.wait(0.03):
                        return
                    conn.sendall(b'NG\r\n')


class BannerBackend(harness.Backend):
    """Writes `banner` as soon as a connection is accepted, then reads it to
    EOF (answering nothing); `received` lists what each connection sent."""

    def __init__(self, name='smtp', banner=b'220 mail ESMTP\r\n'):
        self.banner = banner
        self.received = []
        super().__init__(name)

    def set_banner(self, banner):
        with self.lock:
            self.banner = banner

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def serve(self, conn):
        with self.lock:
            banner = self.banner
        got = bytearray()
        try:
            conn.sendall(banner)
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                got += data
        finally:
            with self.lock:
                self.received.append(bytes(got))


class EchoAllBackend(harness.Backend):
    """Echoes every byte at once; `received` lists each connection's bytes."""

    def __init__(self, name='echo'):
        self.received = []
        super().__init__(name)

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def serve(self, conn):
        got = bytearray()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                got += data
                conn.sendall(data)
        finally:
            with self.lock:
                self.received.append(bytes(got))


class ExpectTestCase(harness.TcplbTestCase):

    def start(self, backend, options='', **pool_keys):
        """tcplb with listener `redis` (mode tcp) over pool p of one server
        r at backend; returns (lb, port). Each instance has its own
        directory for its stats socket and log."""
        sub = os.path.join(self.tmp, 'lb%d' % len(self._lbs))
        os.mkdir(sub)
        cfg = harness.Config(sub, workers=2)
        port = cfg.listener('redis', pool='p', mode='tcp')
        cfg.pool('p', [('r', backend, options)], **pool_keys)
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        return lb, port

    def wait_state(self, lb, state, timeout):
        if harness.wait_server_state(lb, 'p', 'r', state, timeout) is None:
            self.fail('p/r not %s within %.1fs (now %s)\n%s'
                      % (state, timeout, harness.server_state(lb, 'p', 'r'),
                         '\n'.join(self.events(lb))))

    def checks_seen(self, backend, n, timeout=3.0):
        """The bytes of the first n finished check connections, waited for."""
        if not harness.wait_until(lambda: len(backend.snapshot()) >= n, timeout):
            self.fail('only %d check connections within %.1fs'
                      % (len(backend.snapshot()), timeout))
        return backend.snapshot()[:n]

    def assert_stays_up(self, lb, backend, checks):
        """p/r stays up (no down event) while `checks` more checks pass."""
        start = len(backend.snapshot())
        ok = harness.wait_until(
            lambda: (harness.server_state(lb, 'p', 'r') != 'up' or
                     len(backend.snapshot()) >= start + checks), 3.0, 0.01)
        self.assertTrue(ok, 'too few checks')
        self.assertEqual(harness.server_state(lb, 'p', 'r'), 'up',
                         '\n'.join(self.events(lb)))
        self.assertFalse([ln for ln in self.events(lb) if '->down' in ln],
                         self.events(lb))

    def refused(self, pool_keys, want):
        """tcplb -c -f of a pool with pool_keys (text) must exit 1 with
        `FILE:LINE: want`."""
        path = os.path.join(self.tmp, 'check.ini')
        with open(path, 'w') as f:
            f.write('[global]\nworkers = 1\nlog = off\n\n[listener r]\n'
                    'bind = 127.0.0.1:%d\npool = p\n\n[pool p]\n'
                    'server = r 127.0.0.1:9\n%s\n' % (harness.free_port(), pool_keys))
        rc, err = harness.check_config(path)
        self.assertEqual(rc, 1, 'accepted:\n%s\n%s' % (pool_keys, err))
        self.assertRegex(err, r'^%s:\d+: %s' % (re.escape(path), want))


# ---------------------------------------------------------------- send and expect

class SendExpectTest(ExpectTestCase):

    def test_ping_pong_keeps_the_server_up_and_each_check_sends_exactly_ping(self):
        """Every check connection brings exactly `PING\\r\\n`; the server stays
        up; the traffic is relayed as is."""
        r = self.backend(RedisLikeBackend)
        lb, port = self.start(r, **REDIS)
        self.assert_stays_up(lb, r, 5)
        self.assertEqual(set(self.checks_seen(r, 5)), {b'PING\r\n'})
        s = self.connect(port)
        s.sendall(b'PING\r\nhello\r\n')
        self.assertEqual(harness.recv_exact(s, 14), b'+PONG\r\nhello\r\n')

    def test_an_error_answer_takes_it_down_with_the_bytes_in_the_event(self):
        """`-ERR ...` is not `+PONG`: down after one check, the event shows
        its first line (controls as \\xHH, cut at 48 bytes with `...`); `+PONG`
        again brings it up."""
        r = self.backend(RedisLikeBackend)
        lb, port = self.start(r, **REDIS)
        self.assert_stays_up(lb, r, 2)
        r.set_mode('err')
        t = time.monotonic()
        self.wait_state(lb, 'down', DOWN_WITHIN)
        self.assertLessEqual(time.monotonic() - t, DOWN_WITHIN)
        self.wait_event(lb, r'^%s p/r up->down unexpected answer '
                        r'"-ERR unknown command", 1/1;' % TS, 1)
        self.assertIn('server p/r is down: unexpected answer "-ERR unknown command"',
                      harness.tcplb_output(lb))
        s = self.connect(port)
        self.assertEqual(harness.recv_until_eof(s), b'', 'a client got through')
        r.set_mode('pong')
        self.wait_state(lb, 'up', DOWN_WITHIN)
        self.wait_event(lb, r'^%s p/r down->up expected answer' % TS, 1)
        r.set_mode('err-long')
        self.wait_state(lb, 'down', DOWN_WITHIN)
        self.wait_event(lb, r'^%s p/r up->down unexpected answer "-ERR %s\.\.\.", 1/1;'
                        % (TS, 'x' * 43), 1)

    def test_a_close_before_the_answer_takes_it_down(self):
        r = self.backend(RedisLikeBackend)
        lb, _ = self.start(r, **REDIS)
        # up first: a mode set before the first check ends makes that check
        # the failing one ("first check", not "1/1")
        self.wait_state(lb, 'up', DOWN_WITHIN)
        for mode in ('close', 'short'):
            with self.subTest(mode=mode):
                r.set_mode(mode)
                self.wait_state(lb, 'down', DOWN_WITHIN)
                self.wait_event(lb, r'^%s p/r up->down closed before the expected '
                                r'answer' % TS, 1)
                r.set_mode('pong')
                self.wait_state(lb, 'up', DOWN_WITHIN)
        downs = [ln for ln in self.events(lb) if 'up->down' in ln]
        self.assertEqual(len(downs), 2, downs)
        self.assertTrue(all(re.search(r' p/r up->down closed before the expected '
                                      r'answer, 1/1;', ln) for ln in downs), downs)

    def test_silence_is_a_timeout(self):
        r = self.backend(RedisLikeBackend, mode='silent')
        lb, _ = self.start(r, **REDIS)
        self.wait_state(lb, 'down', DOWN_WITHIN)
        self.wait_event(lb, r'^%s p/r up->down no answer within 100ms' % TS, 1)
        # the checks still sent their PING
        self.assertEqual(set(self.checks_seen(r, 2)), {b'PING\r\n'})

    def test_an_answer_in_two_pieces_matches(self):
        """`+PO`, then `NG` 30 ms later (within health_timeout): a prefix
        is waited on, not judged."""
        r = self.backend(RedisLikeBackend, mode='split')
        lb, _ = self.start(r, **REDIS)
        self.assert_stays_up(lb, r, 4)

    def test_escapes_in_health_send_and_health_expect(self):
        """`\\x50ING\\r\\n` is `PING\\r\\n`; with an echoing server, a
        health_send of every escape (tab, backslash, NUL, a high byte)
        arrives byte for byte and a health_expect of the same escapes
        matches the echo."""
        r = self.backend(RedisLikeBackend)
        lb, _ = self.start(r, **dict(CHECKS, health_send=r'\x50ING\r\n',
                                     health_expect=r'\x2bPO'))
        self.assert_stays_up(lb, r, 3)
        self.assertEqual(set(self.checks_seen(r, 3)), {b'PING\r\n'})

        echo = self.backend(EchoAllBackend)
        text = r'a\tb\\c\x00\xFFz\r\n'
        lb2, _ = self.start(echo, **dict(CHECKS, health_send=text, health_expect=text))
        self.assert_stays_up(lb2, echo, 3)
        self.assertEqual(set(self.checks_seen(echo, 3)), {b'a\tb\\c\x00\xffz\r\n'})

    def test_an_expect_that_differs_only_after_a_nul_fails(self):
        """The comparison is of bytes, not of C strings: the echo of
        `a\\x00b` does not start with `a\\x00c`."""
        echo = self.backend(EchoAllBackend)
        lb, _ = self.start(echo, **dict(CHECKS, health_send=r'a\x00b',
                                        health_expect=r'a\x00c'))
        self.wait_state(lb, 'down', DOWN_WITHIN)
        self.wait_event(lb, r'^%s p/r up->down unexpected answer "a\\x00b"' % TS, 1)

    def test_send_proxy_comes_first(self):
        """send-proxy: each check brings `PROXY UNKNOWN\\r\\n`, then
        `PING\\r\\n`, and passes; send-proxy-v2: the v2 signature (LOCAL),
        then `PING\\r\\n`."""
        r = self.backend(RedisLikeBackend)
        lb, _ = self.start(r, 'send-proxy', **REDIS)
        self.assert_stays_up(lb, r, 3)
        for got in self.checks_seen(r, 3):
            self.assertTrue(got.startswith(b'PROXY '), got)
            self.assertEqual(got, b'PROXY UNKNOWN\r\nPING\r\n')
        r2 = self.backend(RedisLikeBackend)
        lb2, _ = self.start(r2, 'send-proxy-v2', **REDIS)
        self.assert_stays_up(lb2, r2, 3)
        for got in self.checks_seen(r2, 3):
            self.assertEqual(got, PROXY_V2_SIG + b'\x20\x00\x00\x00PING\r\n')

    @unittest.skipUnless(shutil.which('redis-cli'), 'redis-cli is not installed')
    def test_redis_cli_through_tcplb(self):
        """A real client: `redis-cli -p LBPORT ping` answers PONG through
        tcplb to the Redis-like server (checked with PING/+PONG)."""
        r = self.backend(RedisLikeBackend)
        lb, port = self.start(r, **REDIS)
        self.assert_stays_up(lb, r, 1)
        p = subprocess.run(['redis-cli', '-h', harness.HOST, '-p', str(port), 'ping'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=10)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, 'PONG'), p.stderr)


# ---------------------------------------------------------------- banners

class BannerTest(ExpectTestCase):

    def test_an_empty_health_send_reads_the_banner(self):
        """health_send empty: nothing is sent, `220 mail ESMTP` passes;
        a server greeting `554 go away` is down, the event says so."""
        smtp = self.backend(BannerBackend)
        lb, _ = self.start(smtp, **dict(CHECKS, health_send='', health_expect='220'))
        self.assert_stays_up(lb, smtp, 3)
        self.assertEqual(set(self.checks_seen(smtp, 3)), {b''})
        smtp.set_banner(b'554 go away\r\n')
        self.wait_state(lb, 'down', DOWN_WITHIN)
        self.wait_event(lb, r'^%s p/r up->down unexpected answer "554 go away"'
                        % TS, 1)
        smtp.set_banner(b'220 back\r\n')
        self.wait_state(lb, 'up', DOWN_WITHIN)

    def test_a_server_dead_at_start_is_down_after_its_first_check(self):
        port = harness.dead_port()
        cfg = self.config(workers=1)
        cfg.listener('smtp', pool='p', mode='tcp')
        cfg.pool('p', [('r', '%s:%d' % (harness.HOST, port))],
                 **dict(CHECKS, health_send='', health_expect='220'))
        lb = self.tcplb(cfg)
        self.wait_state(lb, 'down', DOWN_WITHIN)
        self.wait_event(lb, r'^%s p/r up->down connect: Connection refused' % TS, 1)


# ---------------------------------------------------------------- configuration

class ExpectConfigTest(ExpectTestCase):

    def test_bad_escapes_are_refused(self):
        cases = [
            (r'\q', r'health_send: unknown escape \\q at offset 0 \(known: '),
            (r'PING\x4', r'health_send: \\x needs two hex digits at offset 4'),
            (r'\xZZ', r'health_send: \\x needs two hex digits at offset 0'),
            ('PING\\', r'health_send: a lone backslash at the end'),
        ]
        for value, want in cases:
            with self.subTest(value=value[:20]):
                self.refused('health = expect\nhealth_send = %s\nhealth_expect = +PONG'
                             % value, want)
        self.refused('health = expect\nhealth_expect = %s' % ('y' * 129),
                     r'health_expect: longer than 128 bytes')
        self.refused('health = expect\nhealth_expect = \\r\\', 
                     r'health_expect: a lone backslash at the end')

    def test_expect_needs_health_expect_and_the_keys_need_expect(self):
        self.refused('health = expect\nhealth_send = PING\\r\\n',
                     r"pool 'p': health = expect needs health_expect")
        self.refused('health = expect\nhealth_expect =', r'health_expect: empty value')
        self.refused('health = tcp\nhealth_send = PING\\r\\n',
                     r"pool 'p': health_send and health_expect need health = expect")
        self.refused('health = http\nhealth_expect = +PONG',
                     r"pool 'p': health_send and health_expect need health = expect")

    def test_the_longest_values_that_fit_a_line_are_accepted(self):
        """Lines hold at most 199 characters, so the longest health_send
        is 185 bytes (the 256 bytes the docs allow once unescaped cannot
        be written); health_expect's 128 bytes fit, with send-proxy-v2."""
        path = os.path.join(self.tmp, 'ok.ini')
        with open(path, 'w') as f:
            f.write('[global]\nworkers = 1\nlog = off\n[listener r]\n'
                    'bind = 127.0.0.1:%d\npool = p\n[pool p]\nserver = r 127.0.0.1:9 '
                    'send-proxy-v2\nhealth = expect\nhealth_send = %s\n'
                    'health_expect = %s\n'
                    % (harness.free_port(), 'x' * 185, 'y' * 128))
        self.assertEqual(harness.check_config(path), (0, ''))


# ---------------------------------------------------------------- a real Redis

@unittest.skipUnless(shutil.which('redis-server') and shutil.which('redis-cli'),
                     'redis-server (and redis-cli) not installed: the real Redis case '
                     'is skipped')
class RealRedisTest(ExpectTestCase):

    def test_a_real_redis_is_checked_with_ping_and_relayed(self):
        port = harness.free_port()
        proc = subprocess.Popen(['redis-server', '--port', str(port), '--bind', harness.HOST,
                                 '--save', '', '--appendonly', 'no',
                                 '--daemonize', 'no'],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        self.addCleanup(harness.stop_process, proc)
        self.assertTrue(harness.wait_until(lambda: harness.is_listening(port), 5),
                        'redis-server is not listening')
        lb, lbport = self.start('%s:%d' % (harness.HOST, port), **REDIS)
        # up, and kept up by its checks: redis counts their connections
        def connections():
            out = subprocess.run(['redis-cli', '-h', harness.HOST, '-p', str(port),
                                  'info', 'stats'], stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=10).stdout
            m = re.search(r'^total_connections_received:(\d+)', out, re.M)
            return int(m.group(1)) if m else 0
        self.assertTrue(harness.wait_until(lambda: connections() >= 6, 5),
                        'redis-server saw %d connections' % connections())
        self.assertEqual(harness.server_state(lb, 'p', 'r'), 'up',
                         '\n'.join(self.events(lb)))
        self.assertFalse([ln for ln in self.events(lb) if '->down' in ln])
        p = subprocess.run(['redis-cli', '-h', harness.HOST, '-p', str(lbport), 'ping'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.stdout.strip(), 'PONG', p.stderr)
        harness.stop_process(proc)
        self.wait_state(lb, 'down', DOWN_WITHIN)


if __name__ == '__main__':
    unittest.main()
