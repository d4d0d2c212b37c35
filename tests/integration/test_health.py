"""Health checking (docs/reference.md: Configuration; Scheduling; Relaying and error answers; Stats socket): active tcp and http
checks with rise/fall and their timing bounds, passive checks from traffic,
the admin states set from the stats socket and how they combine with health,
and the 502/504 answers' counters and access log terms.

Timing bounds are the documented ones plus a fixed slack for scheduling:
a check round is at most health_interval apart, and a failing check takes at
most health_timeout, so N failures take at most N x interval + timeout."""

import re
import socket
import time
import unittest

import harness

SLACK = 0.5
INTERVAL = 0.3        # health_interval used by most cases, seconds
TIMEOUT = 0.2         # health_timeout


def ms(seconds):
    return '%dms' % round(seconds * 1000)


class HealthTestCase(harness.TcplbTestCase):

    def start(self, servers, mode='http', workers=2, **pool_keys):
        keys = dict(health='tcp', health_interval=ms(INTERVAL),
                    health_timeout=ms(TIMEOUT), rise=2, fall=2)
        keys.update(pool_keys)
        cfg = self.config(workers=workers)
        port = cfg.listener('web', pool='p', mode=mode)
        cfg.pool('p', servers, **keys)
        lb = self.tcplb(cfg)
        return lb, port

    def wait_state(self, lb, server, state, within, since):
        """Asserts POOL p/server reaches state within `within` seconds of the
        monotonic time `since`; returns how long it took."""
        left = max(0.0, since + within - time.monotonic())
        seen = harness.wait_server_state(lb, 'p', server, state, left + 0.05)
        if seen is None:
            self.fail('p/%s not %s within %.2fs (now %s)'
                      % (server, state, within,
                         harness.server_state(lb, 'p', server)))
        took = seen - since
        self.assertLessEqual(took, within + 0.05,
                             'p/%s %s after %.2fs, bound %.2fs'
                             % (server, state, took, within))
        return took

    def assert_stays(self, lb, server, state, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.assertEqual(harness.server_state(lb, 'p', server), state)
            time.sleep(0.05)

    def wait_log(self, lb, pattern, timeout=2.0):
        """The first line of tcplb's output matching the regex, waited for."""
        rx = re.compile(pattern)

        def probe():
            for line in harness.tcplb_output(lb).splitlines():
                if rx.search(line):
                    return line
            return None
        line = harness.wait_until(probe, timeout)
        if not line:
            self.fail('no output line matching %r:\n%s'
                      % (pattern, harness.tcplb_output(lb)[-3000:]))
        return line

    def backends_of(self, port, n, path='/x'):
        """X-Backend of n sequential requests (new connection each)."""
        got = []
        for _ in range(n):
            r = harness.http_request(port, path=path, timeout=5)
            self.assertEqual(r.status, 200, r)
            got.append(r.headers.get('x-backend'))
        return got


class ActiveCheckTest(HealthTestCase):

    def test_server_dead_at_start_is_down_within_one_round(self):
        live = self.backend(harness.HttpBackend, 'live')
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        lb, port = self.start([('live', live), ('dead', dead)])
        # from when tcplb accepts: process start-up is not the checker's time
        t0 = time.monotonic()
        took = self.wait_state(lb, 'dead', 'down', INTERVAL + TIMEOUT + SLACK, t0)
        line = self.wait_log(lb, r'server p/dead is down: ')
        self.assertIn('first check', line)
        self.assertIn('refused', line.lower())
        self.assertEqual(harness.server_state(lb, 'p', 'live'), 'up')
        # and traffic goes only to the live one, with no client failure
        self.assertEqual(set(self.backends_of(port, 6)), {'live'})
        self.assertNotIn('p/live is down', harness.tcplb_output(lb))
        print('[dead at start: down after %.3fs] ' % took, end='', flush=True)

    def test_live_servers_stay_up(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, _ = self.start([('a', a), ('b', b)])
        self.assert_stays(lb, 'a', 'up', 4 * INTERVAL)
        self.assertEqual(harness.server_state(lb, 'p', 'b'), 'up')
        # checks really ran: each backend saw tcp check connections
        self.assertGreaterEqual(a.connections, 2)
        self.assertGreaterEqual(b.connections, 2)
        self.assertNotIn(' is down', harness.tcplb_output(lb))

    def test_http_check_request_has_path_and_host(self):
        a = self.backend(harness.SwitchableHttpBackend, 'a', health_path='/hc')
        lb, _ = self.start([('a', a)], health='http', health_path='/hc')
        harness.wait_until(lambda: len(a.checks) >= 2, 4 * INTERVAL)
        self.assertGreaterEqual(len(a.checks), 2)
        head = a.checks[0][1]
        lines = head.split('\r\n')
        self.assertEqual(lines[0], 'GET /hc HTTP/1.1', head)
        hosts = [ln.split(':', 1)[1].strip() for ln in lines[1:]
                 if ln.lower().startswith('host:')]
        self.assertEqual(len(hosts), 1, head)
        self.assertIn(str(a.port), hosts[0], head)
        self.assertEqual(a.requests, 0, 'checks counted as requests')
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'up')

    def test_http_503_goes_down_and_200_comes_back_up(self):
        a = self.backend(harness.SwitchableHttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, port = self.start([('a', a), ('b', b)], health='http',
                              health_path='/health', rise=2, fall=2)
        harness.wait_until(lambda: len(a.checks) >= 2, 4 * INTERVAL)
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'up')

        t_sick = time.monotonic()
        a.set_health(503)
        down = self.wait_state(lb, 'a', 'down', 2 * INTERVAL + TIMEOUT + SLACK,
                               t_sick)
        line = self.wait_log(lb, r'server p/a is down: ')
        self.assertIn('HTTP status 503', line)
        self.assertIn('2/2', line)
        # while down, clients only see b
        self.assertEqual(set(self.backends_of(port, 6)), {'b'})

        t_ok = time.monotonic()
        a.set_health(200)
        up = self.wait_state(lb, 'a', 'up', 2 * INTERVAL + SLACK, t_ok)   # rise=2
        line = self.wait_log(lb, r'server p/a is up: ')
        self.assertIn('HTTP status 200', line)
        self.assertIn('2/2', line)
        self.assertIn('a', self.backends_of(port, 6))
        print('[down %.3fs, up %.3fs] ' % (down, up), end='', flush=True)

    def test_http_3xx_is_healthy_4xx_is_not(self):
        a = self.backend(harness.SwitchableHttpBackend, 'a', health=302)
        lb, _ = self.start([('a', a)], health='http', rise=1, fall=1)
        harness.wait_until(lambda: len(a.checks) >= 3, 6 * INTERVAL)
        self.assertGreaterEqual(len(a.checks), 3)
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'up')
        t = time.monotonic()
        a.set_health(404)
        self.wait_state(lb, 'a', 'down', INTERVAL + TIMEOUT + SLACK, t)
        self.assertIn('HTTP status 404', self.wait_log(lb, r'server p/a is down: '))
        t = time.monotonic()
        a.set_health(301)
        self.wait_state(lb, 'a', 'up', INTERVAL + TIMEOUT + SLACK, t)

    def test_http_server_that_never_answers_goes_down_after_fall(self):
        a = self.backend(harness.SwitchableHttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        fall = 3
        lb, port = self.start([('a', a), ('b', b)], health='http', rise=2,
                              fall=fall)
        # past the first (fresh) check, so that fall applies
        harness.wait_until(lambda: len(a.checks) >= 2, 4 * INTERVAL)
        t = time.monotonic()
        a.set_health('stall')
        took = self.wait_state(lb, 'a', 'down', fall * INTERVAL + TIMEOUT + SLACK, t)
        # not before fall - 1 whole intervals plus one timeout
        self.assertGreaterEqual(took, (fall - 1) * INTERVAL + TIMEOUT - 0.05,
                                'down after %.3fs: sooner than fall=%d checks'
                                % (took, fall))
        line = self.wait_log(lb, r'server p/a is down: ')
        self.assertIn('no answer within %dms' % round(TIMEOUT * 1000), line)
        self.assertIn('%d/%d' % (fall, fall), line)
        self.assertEqual(set(self.backends_of(port, 4)), {'b'})
        print('[stalled: down after %.3fs] ' % took, end='', flush=True)

    def test_http_bad_answers_count_as_failures(self):
        a = self.backend(harness.SwitchableHttpBackend, 'a')
        lb, _ = self.start([('a', a)], health='http', rise=1, fall=1)
        harness.wait_until(lambda: len(a.checks) >= 2, 4 * INTERVAL)
        reasons = {'garbage': 'not an HTTP answer',
                   'close': 'closed before a status line'}
        for mode, reason in reasons.items():
            with self.subTest(mode=mode):
                t = time.monotonic()
                a.set_health(mode)
                self.wait_state(lb, 'a', 'down', INTERVAL + TIMEOUT + SLACK, t)
                t = time.monotonic()
                a.set_health(200)
                self.wait_state(lb, 'a', 'up', INTERVAL + TIMEOUT + SLACK, t)
        out = harness.tcplb_output(lb)
        for reason in reasons.values():
            self.assertIn(reason, out)

    def test_tcp_check_server_restarting_comes_back(self):
        """tcp check on a port that stops and starts listening again."""
        port_a = harness.free_port()
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((harness.HOST, port_a))
        ls.listen(64)
        self.addCleanup(lambda: ls.close())
        lb, _ = self.start([('a', '%s:%d' % (harness.HOST, port_a))],
                           rise=2, fall=2)
        self.assert_stays(lb, 'a', 'up', 2 * INTERVAL)
        t = time.monotonic()
        ls.close()
        self.wait_state(lb, 'a', 'down', 2 * INTERVAL + TIMEOUT + SLACK, t)
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((harness.HOST, port_a))
        ls.listen(64)
        t = time.monotonic()
        self.wait_state(lb, 'a', 'up', 2 * INTERVAL + SLACK, t)      # rise=2
        self.assertIn('p/a is up: connect ok, 2/2',
                      self.wait_log(lb, r'server p/a is up: '))


class AdminTest(HealthTestCase):

    def admin(self, lb, cmd):
        return lb.stats(cmd)

    def test_drain_keeps_state_and_gets_no_new_connections(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, port = self.start([('a', a), ('b', b)])
        # two kept-alive connections before the drain: one on each server
        socks = [self.connect(port, timeout=5) for _ in range(2)]
        on = [harness.http_request(port, close=False, sock=s).headers['x-backend']
              for s in socks]
        self.assertEqual(sorted(on), ['a', 'b'])
        self.assertEqual(self.admin(lb, 'drain server p/a'), 'p/a drain\n\n')
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'drain')
        self.assertEqual(set(self.backends_of(port, 10)), {'b'})
        # health checks keep passing and do not undo the drain
        self.assert_stays(lb, 'a', 'drain', 3 * INTERVAL)
        self.assertEqual(set(self.backends_of(port, 4)), {'b'})
        # the connection that was already on a keeps being served by a
        s_a = socks[on.index('a')]
        r = harness.http_request(port, close=False, sock=s_a)
        self.assertEqual(r.headers['x-backend'], 'a')
        # enable: a takes new connections again
        self.assertEqual(self.admin(lb, 'enable server p/a'), 'p/a up\n\n')
        self.assertEqual(set(self.backends_of(port, 4)), {'a', 'b'})
        self.wait_log(lb, r'server p/a is drain: ')

    def test_disable_is_maint_and_enable_is_up(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, port = self.start([('a', a), ('b', b)])
        self.assertEqual(self.admin(lb, 'disable server p/a'), 'p/a maint\n\n')
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'maint')
        self.assertEqual(set(self.backends_of(port, 8)), {'b'})
        self.assert_stays(lb, 'a', 'maint', 3 * INTERVAL)
        # repeating the command is harmless
        self.assertEqual(self.admin(lb, 'disable server p/a'), 'p/a maint\n\n')
        self.assertEqual(self.admin(lb, 'enable server p/a'), 'p/a up\n\n')
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'up')
        self.assertEqual(set(self.backends_of(port, 4)), {'a', 'b'})
        self.assertEqual(self.admin(lb, 'enable server p/a'), 'p/a up\n\n')
        out = harness.tcplb_output(lb)
        self.assertIn('server p/a is maint: ', out)
        self.assertIn('server p/a is up: ', out)

    def test_enable_unhealthy_server_is_down(self):
        b = self.backend(harness.HttpBackend, 'b')
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        lb, port = self.start([('dead', dead), ('b', b)])
        t0 = time.monotonic()
        self.wait_state(lb, 'dead', 'down', INTERVAL + TIMEOUT + SLACK, t0)
        # maint wins over down; down wins over drain
        self.assertEqual(self.admin(lb, 'disable server p/dead'), 'p/dead maint\n\n')
        self.assertEqual(self.admin(lb, 'drain server p/dead'), 'p/dead down\n\n')
        self.assertEqual(self.admin(lb, 'disable server p/dead'), 'p/dead maint\n\n')
        self.assert_stays(lb, 'dead', 'maint', 2 * INTERVAL)
        self.assertEqual(self.admin(lb, 'enable server p/dead'), 'p/dead down\n\n')
        self.assert_stays(lb, 'dead', 'down', 2 * INTERVAL)
        self.assertEqual(set(self.backends_of(port, 4)), {'b'})

    def test_drained_server_that_fails_is_down_then_drain_again(self):
        a = self.backend(harness.SwitchableHttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, _ = self.start([('a', a), ('b', b)], health='http', rise=1, fall=1)
        harness.wait_until(lambda: len(a.checks) >= 2, 4 * INTERVAL)
        self.assertEqual(self.admin(lb, 'drain server p/a'), 'p/a drain\n\n')
        t = time.monotonic()
        a.set_health(500)
        self.wait_state(lb, 'a', 'down', INTERVAL + TIMEOUT + SLACK, t)
        t = time.monotonic()
        a.set_health(200)
        self.wait_state(lb, 'a', 'drain', INTERVAL + TIMEOUT + SLACK, t)
        self.assertEqual(self.admin(lb, 'enable server p/a'), 'p/a up\n\n')

    def test_admin_with_health_none(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, port = self.start([('a', a), ('b', b)], health='none')
        self.assertEqual(self.admin(lb, 'disable server p/a'), 'p/a maint\n\n')
        self.assertEqual(set(self.backends_of(port, 4)), {'b'})
        self.assertEqual(self.admin(lb, 'drain server p/a'), 'p/a drain\n\n')
        self.assertEqual(self.admin(lb, 'enable server p/a'), 'p/a up\n\n')

    def test_bad_refs_answer_error_and_change_nothing(self):
        a = self.backend(harness.HttpBackend, 'a')
        lb, port = self.start([('a', a)])
        for cmd in ('disable server nopool/a', 'disable server p/nosuch',
                    'drain server p', 'enable server /a', 'enable server p/',
                    'drain server /', 'disable server', 'disable server p/a extra',
                    'disable p/a'):
            with self.subTest(cmd=cmd):
                ans = self.admin(lb, cmd)
                self.assertTrue(ans.startswith('error:'), repr(ans))
                self.assertTrue(ans.endswith('\n\n'), repr(ans))
                self.assertEqual(ans.count('\n'), 2, repr(ans))
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'up')
        # several commands in one connection, bad ones among them
        ans = lb.stats_raw('drain server p/x\ndrain server p/a\n'
                           'enable server q/a\nenable server p/a\n')
        parts = ans.split('\n\n')
        self.assertEqual(len(parts), 5, repr(ans))
        self.assertTrue(parts[0].startswith('error:'), repr(ans))
        self.assertEqual(parts[1], 'p/a drain')
        self.assertTrue(parts[2].startswith('error:'), repr(ans))
        self.assertEqual(parts[3:], ['p/a up', ''])
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'up')
        self.assertEqual(set(self.backends_of(port, 2)), {'a'})


class PassiveCheckTest(HealthTestCase):

    def test_traffic_marks_dead_server_down_before_active_checks(self):
        """health_interval 10s: after its first check at start, a's next
        active check is 10 s away; traffic must find it dead first. b's
        first check is at 5 s (spread), the test ends well before."""
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        t_start = time.monotonic()
        lb, port = self.start([('a', a), ('b', b)], health_interval='10s',
                              health_timeout='1s', fall=2, rise=2, retries=2)
        harness.wait_until(lambda: a.connections >= 1, 2)   # a's first check
        time.sleep(0.1)
        t_kill = time.monotonic()
        a.stop()                                  # connects now refused
        results = []
        for _ in range(12):
            r = harness.http_request(port, timeout=5)
            results.append((r.status, r.headers.get('x-backend')))
        self.assertEqual([s for s, _ in results], [200] * 12,
                         'retries=2 must hide the dead server: %r' % results)
        self.assertEqual({x for _, x in results}, {'b'})
        seen = harness.wait_server_state(lb, 'p', 'a', 'down', 2)
        self.assertIsNotNone(seen, 'traffic did not mark a down')
        took = seen - t_kill
        self.assertLess(seen - t_start, 4.5, 'too late to tell passive from active')
        line = self.wait_log(lb, r'server p/a is down: ')
        self.assertIn('by traffic', line)
        self.assertIn('2/2', line)
        # down stops the failed connects: no new failure on a
        failed = harness.find_server(lb.stats_json(), 'p', 'a')['failed']
        self.assertGreaterEqual(failed, 2)
        self.assertEqual(set(self.backends_of(port, 10)), {'b'})
        js = self.settled_stats(lb)
        self.assertEqual(harness.find_server(js, 'p', 'a')['failed'], failed)
        self.assertEqual(harness.find_listener(js, 'web')['rejected'], 0)
        print('[passive: down %.3fs after the kill, %d failed connects] '
              % (took, failed), end='', flush=True)

    def test_health_none_never_marks_down(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, port = self.start([('a', a), ('b', b)], health='none', fall=1,
                              retries=2)
        a.stop()
        self.assertEqual(set(self.backends_of(port, 10)), {'b'})
        js = self.settled_stats(lb)
        srv = harness.find_server(js, 'p', 'a')
        self.assertEqual(srv['state'], 'up')
        self.assertGreaterEqual(srv['failed'], 3)
        self.assertNotIn('is down', harness.tcplb_output(lb))


class ErrorAnswerTest(HealthTestCase):
    """502 and 504 answers are counted on the listener and logged with their
    term. (test_no_server.py and test_timeouts.py already check the answers
    themselves are complete.)"""

    def access_terms(self, lb, n, timeout=3.0):
        """The access log's lines once it holds at least n."""
        lines = harness.wait_until(
            lambda: len(harness.access_log_lines(lb)) >= n and
            harness.access_log_lines(lb), timeout)
        self.assertTrue(lines, 'access log has fewer than %d lines: %r'
                        % (n, harness.access_log_lines(lb)))
        return lines

    def assert_counted(self, lb, http_502, http_504, n):
        js = self.settled_stats(
            lb, lambda js: harness.find_listener(js, 'web')['total'] == n)
        lst = harness.find_listener(js, 'web')
        self.assertEqual((lst['total'], lst['http_502'], lst['http_504'],
                          lst['rejected'], lst['active']),
                         (n, http_502, http_504, 0, 0), lst)

    def check_502(self, cls, name):
        srv = self.backend(cls, name)
        lb, port = self.start([(name, srv)], health='none')
        n = 5
        for i in range(n):
            r = harness.http_request(port, timeout=5)
            self.assertEqual(r.status_line, 'HTTP/1.1 502 Bad Gateway', r)
        self.assert_counted(lb, n, 0, n)
        lines = self.access_terms(lb, n)
        self.assertEqual(len(lines), n, lines)
        for line in lines:
            self.assertIn(' term=server_reset ', line)
            self.assertIn(' server=%s ' % name, line)
            self.assertIn(' bytes_out=0 ', line)

    def test_502_server_closes_before_a_byte(self):
        self.check_502(harness.CloseBeforeReplyBackend, 'closer')

    def test_502_server_resets_before_a_byte(self):
        self.check_502(harness.ResetBeforeReplyBackend, 'resetter')

    def test_504_counted_and_logged(self):
        silent = self.backend(harness.SilentBackend, 'silent')
        lb, port = self.start([('silent', silent)], health='none',
                              server_timeout='300ms')
        n = 3
        for i in range(n):
            t = time.monotonic()
            r = harness.http_request(port, timeout=5)
            took = time.monotonic() - t
            self.assertEqual(r.status_line, 'HTTP/1.1 504 Gateway Timeout', r)
            self.assertGreaterEqual(took, 0.25)
            self.assertLess(took, 0.3 + SLACK + 0.5)
        self.assert_counted(lb, 0, n, n)
        lines = self.access_terms(lb, n)
        self.assertEqual(len(lines), n, lines)
        for line in lines:
            self.assertIn(' term=server_timeout ', line)
            self.assertIn(' server=silent ', line)

    def test_no_504_while_the_client_has_sent_nothing(self):
        """server_timeout runs from the client's first byte on: a silent
        client and a silent server are just idle."""
        silent = self.backend(harness.SilentBackend, 'silent')
        lb, port = self.start([('silent', silent)], health='none',
                              server_timeout='300ms')
        s = self.connect(port, timeout=0.1)
        time.sleep(0.9)
        try:
            got = s.recv(100)
            self.fail('got %r before sending anything' % got)
        except socket.timeout:
            pass
        s.settimeout(5)
        t = time.monotonic()
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        r = harness.read_http_response(s, expect_eof=True)
        s.close()
        self.assertEqual(r.status, 504, r)
        self.assertLess(time.monotonic() - t, 0.3 + SLACK + 0.5)
        self.assert_counted(lb, 0, 1, 1)


if __name__ == '__main__':
    unittest.main()
