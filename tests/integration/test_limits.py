"""Connection limits (docs/configuration.md): a listener's own
maxconn pauses only that listener; a pool's client_maxconn caps what one
client IP may hold open (one more gets a 503 in http mode, term=client_limit);
running out of descriptors pauses accepting for a moment instead of
spinning, never takes a server down, and recovers by itself."""

import os
import socket
import time

import harness

CLK_TCK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    """utime + stime of pid (all its threads), in seconds."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


class LimitsTestCase(harness.TcplbTestCase):

    def echo_once(self, sock, payload, timeout=5):
        sock.settimeout(timeout)
        sock.sendall(payload)
        return harness.recv_exact(sock, len(payload))

    def assert_not_answered(self, sock, seconds=0.5):
        """No byte comes back within seconds (the connection waits in the
        listener's backlog)."""
        sock.settimeout(seconds)
        with self.assertRaises(socket.timeout):
            data = sock.recv(16)
            raise AssertionError('answered %r while it should wait' % data)

    def output_lines(self, lb, needle):
        return [ln for ln in harness.tcplb_output(lb).splitlines() if needle in ln]


class ListenerMaxconnTest(LimitsTestCase):

    def test_capped_listener_waits_while_the_other_keeps_accepting(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        cfg = self.config(workers=2)
        capped = cfg.listener('capped', pool='p', maxconn=2)
        free = cfg.listener('free', pool='p')
        cfg.pool('p', [('echo', echo)])
        lb = self.tcplb(cfg)

        first, second = self.connect(capped), self.connect(capped)
        self.assertEqual(self.echo_once(first, b'one'), b'one')
        self.assertEqual(self.echo_once(second, b'two'), b'two')
        third = self.connect(capped)        # completes in the kernel backlog
        third.sendall(b'three')
        self.assert_not_answered(third)

        # The other listener is not held back by the capped one.
        others = [self.connect(free) for _ in range(5)]
        for i, s in enumerate(others):
            self.assertEqual(self.echo_once(s, b'free-%d' % i), b'free-%d' % i)
        self.assert_not_answered(third, 0.2)
        js = lb.stats_json()
        self.assertEqual(harness.find_listener(js, 'capped')['active'], 2)
        self.assertEqual(harness.find_listener(js, 'free')['active'], 5)

        first.close()
        t0 = time.monotonic()
        self.assertEqual(harness.recv_exact(third, 5), b'three')
        self.assertLess(time.monotonic() - t0, 2.0)
        # ... and the cap holds again with the new pair.
        fourth = self.connect(capped)
        fourth.sendall(b'four')
        self.assert_not_answered(fourth)
        second.close()
        fourth.settimeout(5)
        self.assertEqual(harness.recv_exact(fourth, 4), b'four')
        for s in others + [third, fourth]:
            s.close()
        js = self.settled_stats(lb, lambda js: harness.find_listener(
            js, 'capped')['total'] == 4)
        capped_js = harness.find_listener(js, 'capped')
        self.assertEqual((capped_js['total'], capped_js['rejected']), (4, 0))
        self.assertEqual(harness.find_listener(js, 'free')['total'], 5)


class ClientMaxconnTest(LimitsTestCase):

    def test_third_connection_from_one_ip_gets_503_client_limit(self):
        backend = self.backend(harness.HttpBackend, 'web')
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('web', backend)], client_maxconn=2)
        lb = self.tcplb(cfg)
        ip, other_ip = harness.client_ip(10), harness.client_ip(11)

        # Two keep-alive connections from ip, each answered once and held.
        held = []
        for _ in range(2):
            s = self.connect(port, source=ip)
            r = harness.http_request(port, close=False, sock=s)
            self.assertEqual((r.status, r.body), (200, b'web\n'))
            held.append(s)

        r = harness.http_request(port, source=ip)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.headers.get('connection', '').lower(), 'close', r)
        self.assertTrue(r.eof, 'tcplb closes after the 503')
        self.assertEqual(backend.requests, 2, 'the 3rd never reached the server')

        r = harness.http_request(port, source=other_ip)
        self.assertEqual((r.status, r.body), (200, b'web\n'), 'another IP is fine')

        held[0].close()
        harness.wait_until(lambda: harness.find_listener(
            lb.stats_json(), 'web')['active'] == 1, 3)
        r = harness.http_request(port, source=ip)
        self.assertEqual((r.status, r.body), (200, b'web\n'),
                         'admitted again once one closed')
        # keep-alive on a held connection is not a new connection: no limit
        r = harness.http_request(port, close=False, sock=held[1])
        self.assertEqual(r.status, 200)
        held[1].close()

        js = self.settled_stats(lb)
        self.assertEqual(harness.find_listener(js, 'web')['rejected'], 1)
        self.assertEqual(harness.find_server(js, 'p', 'web')['total'], 4)
        lines = harness.wait_until(lambda: [
            ln for ln in harness.access_log_lines(lb) if 'term=client_limit' in ln], 3)
        self.assertEqual(len(lines), 1, harness.access_log_lines(lb))
        self.assertIn('client=%s:' % ip, lines[0])
        self.assertIn('server=-', lines[0])

    def test_client_limit_in_tcp_mode_closes_without_a_byte(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        cfg = self.config(workers=2)
        port = cfg.listener('tcp', pool='p')
        cfg.pool('p', [('echo', echo)], client_maxconn=1)
        lb = self.tcplb(cfg)
        ip = harness.client_ip(20)
        first = self.connect(port, source=ip)
        self.assertEqual(self.echo_once(first, b'x'), b'x')
        second = self.connect(port, source=ip)
        second.settimeout(5)
        try:
            data = harness.recv_until_eof(second)
        except ConnectionResetError:
            data = b''
        self.assertEqual(data, b'')
        first.close()
        js = self.settled_stats(lb)
        self.assertEqual(harness.find_listener(js, 'tcp')['rejected'], 1)


class DescriptorShortageTest(LimitsTestCase):
    """tcplb under an open-file limit of 64 (hard, so it cannot raise it),
    with maxconn far above what fits."""

    NOFILE = 64

    def start_limited(self, mode):
        if mode == 'http':
            self.server = self.backend(harness.HttpBackend, 'srv')
        else:
            self.server = self.backend(harness.EchoBackend, 'srv')
        cfg = self.config(workers=2, maxconn=100000)
        port = cfg.listener('l', pool='p', mode=mode)
        # fall=1: a single failed health check would show as down.
        # connect_timeout bounds how long an accepted client may wait for a
        # descriptor for its server connection: longer than these tests.
        cfg.pool('p', [('srv', self.server)], health='tcp',
                 health_interval='100ms', health_timeout='100ms', rise=1, fall=1,
                 connect_timeout='10s')
        lb = self.tcplb(cfg, start=False)
        lb.wrapper = ['prlimit', '--nofile=%d:%d' % (self.NOFILE, self.NOFILE),
                      '--'] + lb.wrapper
        lb.start()
        return lb, port

    def idle_http(self, port, timeout=1.0):
        """A keep-alive connection that sends one request: 'ok' (answered
        200, kept open), 'wait' (no answer within timeout; the request stays
        sent) or the status it got. Returns (outcome, sock)."""
        s = self.connect(port, timeout=timeout)
        try:
            r = harness.http_request(port, close=False, sock=s)
        except socket.timeout:
            return 'wait', s
        return ('ok' if r.status == 200 else str(r.status)), s

    def test_out_of_descriptors_pauses_accepts_without_spinning(self):
        lb, port = self.start_limited('http')
        idle = []
        outcome = None
        for _ in range(self.NOFILE):
            outcome, s = self.idle_http(port)
            if outcome != 'ok':
                break
            idle.append(s)
        print('\n    %d idle connections fit in %d descriptors, then %s'
              % (len(idle), self.NOFILE, outcome), end=' ', flush=True)
        # The next one waits: not accepted, or accepted and waiting for a
        # descriptor for its server connection. Never refused or answered 503.
        self.assertEqual(outcome, 'wait',
                         'after %d connections: %s' % (len(idle), outcome))
        waiting = s
        late = self.connect(port)       # arrives while tcplb is out of fds
        self.assertTrue(harness.wait_until(
            lambda: self.output_lines(lb, 'pausing accepts'), 3),
            'no "pausing accepts" line:\n' + harness.tcplb_output(lb)[-2000:])

        # Paused, not spinning: under 0.2 s of CPU in 2 s. Nothing here
        # touches the stats socket, which needs a descriptor too (see
        # test_stats_socket_does_not_spin_while_out_of_descriptors).
        cpu0 = cpu_seconds(lb.pid)
        time.sleep(2.0)
        cpu = cpu_seconds(lb.pid) - cpu0
        print('(%.3f s CPU in 2 s)' % cpu, end=' ', flush=True)
        self.assertLess(cpu, 0.2, 'tcplb spins while out of descriptors')

        # Descriptors come back: the waiting and new connections are served.
        for s in idle:
            s.close()
        waiting.settimeout(5)
        r = harness.read_http_response(waiting)
        self.assertEqual((r.status, r.body), (200, b'srv\n'), 'the waiting one')
        waiting.close()                 # keep-alive: it would stay open
        r = harness.http_request(port, sock=late, timeout=5)
        self.assertEqual((r.status, r.body), (200, b'srv\n'), 'the late one')
        late.close()
        for _ in range(10):
            r = harness.http_request(port, timeout=5)
            self.assertEqual((r.status, r.body), (200, b'srv\n'))
        js = self.settled_stats(lb)
        self.assertEqual(harness.find_listener(js, 'l')['rejected'], 0)
        # The health checks could not get a descriptor either: no verdict,
        # so no server went down (fall=1 would have shown any failure).
        self.assertEqual(harness.server_state(lb, 'p', 'srv'), 'up')
        self.assertEqual(self.output_lines(lb, 'server p/srv is'), [])
        self.assertNotIn('down', lb.stats('show events'))
        self.assertTrue(self.output_lines(lb, 'health check of p/srv skipped'))

    def test_stats_socket_does_not_spin_while_out_of_descriptors(self):
        # The stats socket's accept pauses on EMFILE like the listeners do.
        lb, port = self.start_limited('http')
        idle = []
        for _ in range(self.NOFILE):
            outcome, s = self.idle_http(port)
            idle.append(s)
            if outcome != 'ok':
                break
        # Whatever descriptor is left goes to this client, which holds it.
        idle.append(self.connect(port))
        time.sleep(0.3)
        waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socks.append(waiting)
        waiting.connect(lb.stats_socket)    # in the backlog: not accepted
        cpu0 = cpu_seconds(lb.pid)
        time.sleep(2.0)
        cpu = cpu_seconds(lb.pid) - cpu0
        self.assertLess(cpu, 0.2, 'the main loop spins on the stats socket')

    def test_out_of_descriptors_never_closes_a_client_in_tcp_mode(self):
        # When the descriptor for the server connection is missing, the
        # accepted client waits (the connect is retried) while the worker
        # stops accepting, instead of being closed.
        lb, port = self.start_limited('tcp')
        socks, outcomes = [], []
        for i in range(self.NOFILE):
            s = self.connect(port, timeout=1)
            socks.append(s)
            try:
                outcomes.append('ok' if self.echo_once(s, b'x', 1) == b'x' else '?')
            except socket.timeout:
                outcomes.append('wait')
                break
            except (AssertionError, ConnectionResetError):
                outcomes.append('closed')
        self.assertNotIn('closed', outcomes, outcomes)
