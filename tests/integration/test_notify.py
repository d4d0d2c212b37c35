"""tcplb under a service manager (../shared/CONTRACT.md section 13;
docs/operations.md: Running under systemd): the notify protocol of
sd_notify(3), read from a datagram socket the test owns and names in
NOTIFY_SOCKET, exactly as systemd would for Type=notify.

Each case checks the messages in the order they arrive: READY=1 once the
listeners accept, RELOADING=1 with MONOTONIC_USEC then READY=1 around every
reload (a refused one too), STOPPING=1 on SIGTERM, STATUS= with the
connection counts, and WATCHDOG=1 at half of WATCHDOG_USEC (only for the pid
WATCHDOG_PID names)."""

import os
import signal
import socket
import subprocess
import time
import unittest

import harness

WAIT = 5.0          # seconds a message may take before a test fails


def parse(datagram):
    """{NAME: VALUE} of one notify datagram (newline-separated lines)."""
    out = {}
    for line in datagram.decode().split('\n'):
        if line:
            name, _, value = line.partition('=')
            out[name] = value
    return out


class NotifySocket:
    """The manager's side: a datagram socket at a path (or an abstract
    name) that keeps every message with the time it came."""

    def __init__(self, path=None, abstract=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract is not None:
            self.sock.bind('\0' + abstract)
            self.address = '@' + abstract
        else:
            self.sock.bind(path)
            self.address = path
        self.messages = []      # (monotonic time, {NAME: VALUE})

    def next(self, timeout=WAIT, skip=()):
        """The next message none of whose names is in skip (as a whole:
        a message of STATUS= alone is skipped with skip=('STATUS',))."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no notify message within %.1fs; got %r'
                                     % (timeout, self.messages[-5:]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            msg = parse(data)
            self.messages.append((time.monotonic(), msg))
            if not set(msg) <= set(skip):
                return msg

    def drain(self, seconds):
        """Every message of the next `seconds`."""
        got = []
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return got
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return got
            got.append((time.monotonic(), parse(data)))

    def close(self):
        self.sock.close()


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class NotifyTest(harness.TcplbTestCase):

    def setUp(self):
        super().setUp()
        self.web = self.backend(harness.HttpBackend, 'a')
        self.web2 = self.backend(harness.HttpBackend, 'b')

    def start_lb(self, notify, extra_env=None, wait_listening=True):
        cfg = self.config(workers=2)
        self.port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', self.web), ('b', self.web2)])
        lb = self.tcplb(cfg, start=False)
        env = dict(os.environ)
        env.pop('WATCHDOG_USEC', None)
        env.pop('WATCHDOG_PID', None)
        env['NOTIFY_SOCKET'] = notify.address
        env.update(extra_env or {})
        lb.env = env
        if wait_listening:
            lb.start()
        return lb

    def notify_socket(self, **kwargs):
        if not kwargs:
            kwargs['path'] = os.path.join(self.tmp, 'notify.sock')
        n = NotifySocket(**kwargs)
        self.addCleanup(n.close)
        return n

    def test_ready_once_listeners_accept_then_reload_then_stopping(self):
        n = self.notify_socket()
        lb = self.start_lb(n, wait_listening=False)
        # started by hand, not waited for: when READY=1 comes, the port
        # must accept already
        lb._out = open(lb.out_path, 'wb')
        lb.proc = subprocess.Popen([harness.require_bin(), '-f', lb.cfg_path],
                                   stdin=subprocess.DEVNULL, stdout=lb._out,
                                   stderr=subprocess.STDOUT, env=lb.env)
        first = n.next()
        self.assertEqual(first.get('READY'), '1', first)
        self.assertTrue(harness.is_listening(self.port),
                        'READY=1 sent before the listener was bound')
        self.assertIn('STATUS', first)
        self.assertRegex(first['STATUS'], r'^ready; 0 active connections, 2 of 2 servers up$')
        r = harness.http_request(self.port, timeout=5)
        self.assertEqual(r.status, 200)

        # a reload: RELOADING=1 with the monotonic clock of now, then READY=1
        before = monotonic_usec()
        lb.signal(signal.SIGHUP)
        msg = n.next(skip=('STATUS',))
        after = monotonic_usec()
        self.assertEqual(msg.get('RELOADING'), '1', msg)
        self.assertIn('MONOTONIC_USEC', msg)
        usec = int(msg['MONOTONIC_USEC'])
        self.assertTrue(before <= usec <= after,
                        'MONOTONIC_USEC %d not between %d and %d' % (usec, before, after))
        msg = n.next(skip=('STATUS',))
        self.assertEqual(msg.get('READY'), '1', msg)
        self.assertTrue(msg.get('STATUS', '').startswith('reloaded; '), msg)

        # a refused reload is told the same way, and says so
        with open(lb.cfg_path, 'a') as f:
            f.write('\n[pool broken]\nscheduler = nosuch\n')
        lb.signal(signal.SIGHUP)
        msg = n.next(skip=('STATUS',))
        self.assertEqual(msg.get('RELOADING'), '1', msg)
        msg = n.next(skip=('STATUS',))
        self.assertEqual(msg.get('READY'), '1', msg)
        self.assertTrue(msg.get('STATUS', '').startswith('reload refused'), msg)
        self.assertEqual(harness.http_request(self.port, timeout=5).status, 200)

        lb.signal(signal.SIGTERM)
        msg = n.next(skip=('STATUS',))
        self.assertEqual(msg.get('STOPPING'), '1', msg)
        self.assertTrue(msg.get('STATUS', '').startswith('stopping; '), msg)
        self.assertEqual(lb.wait(10), 0)
        names = [sorted(m) for _, m in n.messages]
        self.assertNotIn(['WATCHDOG'], names, 'WATCHDOG=1 without WATCHDOG_USEC')

    def test_status_counts_open_connections(self):
        n = self.notify_socket()
        lb = self.start_lb(n)
        self.assertEqual(n.next().get('READY'), '1')
        socks = []
        for _ in range(3):
            s = self.connect(self.port)
            s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            harness.read_http_response(s)
            socks.append(s)
        self.assertTrue(harness.wait_until(
            lambda: harness.all_idle(lb.stats_json()) is False, WAIT))
        lb.signal(signal.SIGHUP)        # READY=1 after it carries a STATUS=
        self.assertEqual(n.next(skip=('STATUS',)).get('RELOADING'), '1')
        msg = n.next(skip=('STATUS',))
        self.assertEqual(msg.get('STATUS'),
                         'reloaded; 3 active connections, 2 of 2 servers up')
        # and the periodic STATUS= alone says the same while nothing changes
        msg = n.next(timeout=8)
        self.assertEqual(msg, {'STATUS': '3 active connections, 2 of 2 servers up'})
        self.assertEqual(lb.stats('disable server p/b').strip(), 'p/b maint')
        msg = n.next(timeout=8)
        self.assertEqual(msg, {'STATUS': '3 active connections, 1 of 2 servers up'})

    def test_watchdog_at_half_the_interval(self):
        n = self.notify_socket()
        # 400 ms asked: one WATCHDOG=1 every 200 ms
        lb = self.start_lb(n, {'WATCHDOG_USEC': '400000'})
        self.assertEqual(n.next().get('READY'), '1')
        got = n.drain(3.0)
        pings = [t for t, m in got if m == {'WATCHDOG': '1'}]
        self.assertGreaterEqual(len(pings), 10, 'expected about 15 pings in 3 s: %r' % got)
        self.assertLessEqual(len(pings), 20, 'expected about 15 pings in 3 s: %r' % got)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        # what the manager needs: never a gap as long as WATCHDOG_USEC
        self.assertLess(max(gaps), 0.4, gaps)
        # the pings go on while tcplb relays
        for _ in range(20):
            self.assertEqual(harness.http_request(self.port, timeout=5).status, 200)
        self.assertTrue(any(m == {'WATCHDOG': '1'} for _, m in n.drain(0.5)))
        self.assertIn('watchdog: telling the service manager every 0.200s',
                      open(lb.out_path).read())

    def test_watchdog_for_another_pid_is_not_ours(self):
        n = self.notify_socket()
        self.start_lb(n, {'WATCHDOG_USEC': '200000', 'WATCHDOG_PID': '1'})
        self.assertEqual(n.next().get('READY'), '1')
        got = n.drain(1.0)
        self.assertFalse([m for _, m in got if 'WATCHDOG' in m], got)

    def test_watchdog_pid_naming_tcplb_is_followed(self):
        n = self.notify_socket()
        # WATCHDOG_PID must be tcplb's own pid, which is only known once it
        # runs: a shell that execs tcplb has that pid already
        cfg = self.config(workers=1)
        self.port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', self.web)])
        lb = self.tcplb(cfg, start=False)
        lb.wrapper = ['/bin/sh', '-c', 'WATCHDOG_PID=$$ exec "$0" "$@"']
        env = dict(os.environ, NOTIFY_SOCKET=n.address, WATCHDOG_USEC='400000')
        env.pop('WATCHDOG_PID', None)
        lb.env = env
        lb.start()
        self.assertEqual(n.next().get('READY'), '1')
        got = n.drain(1.0)
        self.assertGreaterEqual(len([m for _, m in got if m == {'WATCHDOG': '1'}]), 3, got)

    def test_abstract_socket(self):
        n = self.notify_socket(abstract='tcplb-it-notify-%d' % os.getpid())
        lb = self.start_lb(n)
        msg = n.next()
        self.assertEqual(msg.get('READY'), '1', msg)
        lb.signal(signal.SIGTERM)
        self.assertEqual(n.next(skip=('STATUS',)).get('STOPPING'), '1')
        self.assertEqual(lb.wait(10), 0)

    def test_unusable_notify_socket_is_logged_and_tcplb_runs(self):
        n = self.notify_socket()
        lb = self.start_lb(n, {'NOTIFY_SOCKET': 'relative/path'})
        self.assertEqual(harness.http_request(self.port, timeout=5).status, 200)
        self.assertIn('NOTIFY_SOCKET=relative/path: not an absolute path or @name',
                      open(lb.out_path).read())

    def test_manager_gone_is_logged_once_and_tcplb_runs(self):
        n = self.notify_socket()
        lb = self.start_lb(n, {'WATCHDOG_USEC': '100000'})
        self.assertEqual(n.next().get('READY'), '1')
        n.close()
        os.unlink(n.address)
        harness.wait_until(lambda: 'notify: cannot tell' in open(lb.out_path).read(), WAIT)
        time.sleep(0.5)         # several more pings fail in this time
        out = open(lb.out_path).read()
        self.assertEqual(out.count('notify: cannot tell the service manager'), 1, out)
        self.assertEqual(harness.http_request(self.port, timeout=5).status, 200)


if __name__ == '__main__':
    unittest.main()
