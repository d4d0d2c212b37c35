"""`explain POOL` (docs/reference.md: Stats socket) with real traffic: each
kind of finding — down, drain, weights, failing_server, slow_server,
hot_client, uneven — from the situation that causes it, a balanced pool's
`verdict: balanced`, the errors, and /explain.json saying the same as the
stats socket."""

import concurrent.futures
import json
import re
import socket
import unittest
import urllib.request

import harness

F = r'(\d+\.\d)'        # a figure with one decimal


class Always503(harness.Backend):
    """Answers every request with 503 and closes."""

    def serve(self, conn):
        buf = b''
        while b'\r\n\r\n' not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        conn.sendall(b'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n'
                     b'Connection: close\r\n\r\nbusy\n')
        conn.shutdown(socket.SHUT_WR)


class Banner(harness.Backend):
    """Sends `hi\\n` and closes: a connection with no exchange, so no
    response time either."""

    def serve(self, conn):
        conn.sendall(b'hi\n')
        conn.shutdown(socket.SHUT_WR)


class ExplainTest(harness.TcplbTestCase):

    def start(self, servers, stats_http=False, mode='http', **pool_keys):
        keys = {}
        if stats_http:
            self.http_port = harness.free_port()
            keys['stats_http'] = '%s:%d' % (harness.HOST, self.http_port)
        cfg = self.config(**keys)
        self.port = cfg.listener('web', pool='p', mode=mode)
        cfg.pool('p', servers, **pool_keys)
        self.lb = self.tcplb(cfg)
        if stats_http:
            harness.wait_until(lambda: harness.is_listening(self.http_port), 3)

    def traffic(self, n, sources=None, threads=1, status=200):
        """n requests, one connection each (from sources[i] if given);
        returns the X-Backend of each answer that has one."""
        def one(i):
            r = harness.http_request(self.port, source=sources[i] if sources else None)
            self.assertEqual(r.status, status, r)
            return r.headers.get('x-backend')
        with concurrent.futures.ThreadPoolExecutor(threads) as ex:
            got = list(ex.map(one, range(n)))
        self.settled_stats(self.lb)
        return got

    def explain(self, pool='p'):
        """(finding lines, verdict) of explain POOL."""
        lines = self.lb.stats('explain %s' % pool).rstrip('\n').split('\n')
        self.assertTrue(lines and lines[-1].startswith('verdict: '), lines)
        for line in lines[:-1]:
            self.assertTrue(line.startswith('finding: '), lines)
        return lines[:-1], lines[-1][len('verdict: '):]

    def servers(self):
        js = self.lb.stats_json()
        return {s['name']: s for s in js['pools'][0]['servers']}

    # ------------------------------------------------------------ kinds

    def test_slow_server_is_named_and_not_taken_for_an_uneven_balancer(self):
        web = [self.backend(harness.HttpBackend, 'web1'),
               self.backend(harness.HttpBackend, 'web2'),
               self.backend(harness.HttpBackend, 'web3', delay=0.05)]
        self.start([(b.name, b) for b in web], stats_http=True)
        got = self.traffic(90, threads=3)
        self.assertEqual(sorted(got.count(b.name) for b in web), [30, 30, 30])
        findings, verdict = self.explain()
        self.assertEqual(verdict, 'slow_server', findings)
        (line,) = findings
        m = re.match(r"^finding: slow_server web3 rt p50 %s ms, %sx the pool's median "
                     r"server \(%s ms\), with 33\.3 %% of the pool's requests \(30 of 90\)"
                     r" and 33\.3 %% of its connections in the last minute: the server is slow,"
                     r" not the balancer$"
                     % (F, F, F), line)
        self.assertIsNotNone(m, line)
        p50, ratio, median = map(float, m.groups())
        srv = self.servers()
        self.assertGreaterEqual(p50, 45.0)
        self.assertGreaterEqual(ratio, 3.0)
        self.assertAlmostEqual(p50, srv['web3']['rt_ms']['p50'], delta=0.06)
        self.assertAlmostEqual(median, sorted(srv[n]['rt_ms']['p50']
                                              for n in srv)[1], delta=0.06)
        # /explain.json says the same
        url = 'http://%s:%d/explain.json' % (harness.HOST, self.http_port)
        with urllib.request.urlopen(url, timeout=5) as r:
            js = json.loads(r.read())
        (pool,) = js['pools']
        self.assertEqual(pool['name'], 'p')
        self.assertEqual(pool['explain']['verdict'], verdict)
        findings, _ = self.explain()        # the same second's diagnosis
        self.assertEqual(['finding: %s %s %s' % (f['kind'], f['subject'], f['detail'])
                          for f in pool['explain']['findings']], findings)
        self.assertEqual([(f['kind'], f['subject']) for f in pool['explain']['findings']],
                         [('slow_server', 'web3')])

    def test_failing_server_by_its_5xx_answers(self):
        web = [self.backend(harness.HttpBackend, 'web1'),
               self.backend(harness.HttpBackend, 'web2')]
        bad = self.backend(Always503, 'web3')
        self.start([('web1', web[0]), ('web2', web[1]), ('web3', bad)])
        codes = []
        for _ in range(30):
            codes.append(harness.http_request(self.port).status)
        self.settled_stats(self.lb)
        self.assertEqual(sorted(codes), [200] * 20 + [503] * 10)
        self.assertEqual(self.servers()['web3']['responses']['5xx'], 10)
        findings, verdict = self.explain()
        self.assertEqual(findings, ['finding: failing_server web3 10 of its 10 responses '
                                    'were 5xx (100.0 %) in the last minute'])
        self.assertEqual(verdict, 'failing_server')

    def refused_server(self):
        """web1, web2 and `dead` (connects refused, health none: it stays
        up), 45 connections, each failed connect retried elsewhere."""
        web = [self.backend(harness.HttpBackend, 'web1'),
               self.backend(harness.HttpBackend, 'web2')]
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        self.start([('web1', web[0]), ('web2', web[1]), ('dead', dead)])
        self.traffic(45)

    def test_failing_server_by_its_failed_connects(self):
        self.refused_server()
        srv = self.servers()
        failed = srv['dead']['failed']
        self.assertGreaterEqual(failed, 10)
        self.assertEqual((srv['dead']['total'], srv['dead']['last_minute']['failed']),
                         (0, failed))
        findings, verdict = self.explain()
        self.assertIn('finding: failing_server dead %d of its %d connects failed '
                      '(100.0 %%) in the last minute' % (failed, failed), findings)
        self.assertEqual(verdict.split(',')[0], 'failing_server', findings)

    def test_retries_around_a_failing_server_are_not_called_uneven(self):
        """The connections the failing server refused went to web1 and web2:
        that is the cause found above, yet both are also `uneven ... with no
        cause found above`, their share measured against 3 servers of which
        one takes nothing."""
        self.refused_server()
        findings, verdict = self.explain()
        self.assertEqual(verdict, 'failing_server', findings)

    def test_hot_client_pinned_by_persist_source(self):
        web = [self.backend(harness.HttpBackend, n) for n in ('web1', 'web2', 'web3')]
        self.start([(b.name, b) for b in web], persist='source')
        hot = self.traffic(20, sources=['127.0.0.2'] * 20)
        self.assertEqual(len(set(hot)), 1, hot)
        others = [harness.client_ip(i) for i in range(1, 11)]     # .3 .. .12
        self.traffic(10, sources=others)
        srv = self.servers()
        mine = srv[hot[0]]['last_minute']['connections']
        self.assertEqual(sum(s['last_minute']['connections'] for s in srv.values()), 30)
        findings, verdict = self.explain()
        self.assertEqual(findings, [
            'finding: hot_client 127.0.0.2 %s sent 66.7 %% of the pool\'s 30 connections '
            'in the last minute (20); persist = source keeps it on %s, whose share is '
            '%.2fx the mean' % (hot[0], hot[0], mine * 3 / 30)])
        self.assertEqual(verdict, 'hot_client')
        clients = self.lb.stats('show clients p 1').split()
        self.assertEqual(clients[:2], ['127.0.0.2', '20'])

    def test_down_drain_and_maint_servers_are_findings(self):
        web = [self.backend(harness.HttpBackend, n) for n in ('web1', 'web2', 'web3')]
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        self.start([(b.name, b) for b in web] + [('dead', dead)], health='tcp',
                   health_interval='300ms', health_timeout='300ms', rise=1, fall=1)
        self.assertTrue(harness.wait_server_state(self.lb, 'p', 'dead', 'down', 5))
        self.assertEqual(self.lb.stats('drain server p/web2').strip(), 'p/web2 drain')
        self.assertEqual(self.lb.stats('disable server p/web3').strip(), 'p/web3 maint')
        findings, verdict = self.explain()
        self.assertEqual(findings, [
            'finding: drain web2 state drain: keeps its persistent clients, takes no new ones',
            'finding: down web3 state maint: takes no new connections (show events tells why)',
            'finding: down dead state down: takes no new connections (show events tells why)'])
        self.assertEqual(verdict, 'drain,down')
        self.assertEqual(self.lb.stats('enable server p/web2').strip(), 'p/web2 up')
        findings, verdict = self.explain()
        self.assertEqual([f.split()[1:3] for f in findings],
                         [['down', 'web3'], ['down', 'dead']])
        self.assertEqual(verdict, 'down')

    def test_unequal_weights_are_a_finding_not_an_imbalance(self):
        web = [self.backend(harness.HttpBackend, n) for n in ('web1', 'web2')]
        self.start([('web1', web[0], 'weight=1'), ('web2', web[1], 'weight=3')])
        got = self.traffic(40)
        self.assertEqual((got.count('web1'), got.count('web2')), (10, 30))
        findings, verdict = self.explain()
        self.assertEqual(findings, ['finding: weights p web1=1 web2=3 in force: shares '
                                    'follow the weights by design'])
        self.assertEqual(verdict, 'weights')

    def test_uneven_share_with_no_cause_is_named(self):
        """web2 in maint for the first 10 connections, then back: web1 has
        20 of 30 while both are up, and nothing explains it any more. (mode
        tcp, servers that only send a banner: no response time, which
        could otherwise name a server slow_server.)"""
        web = [self.backend(Banner, n) for n in ('web1', 'web2')]
        self.start([(b.name, b) for b in web], mode='tcp')

        def connections(n):
            for _ in range(n):
                s = self.connect(self.port)
                self.assertEqual(harness.recv_until_eof(s), b'hi\n')
                s.close()
            self.settled_stats(self.lb)
        self.lb.stats('disable server p/web2')
        connections(10)
        self.assertEqual(self.lb.stats('enable server p/web2').strip(), 'p/web2 up')
        connections(20)
        srv = self.servers()
        self.assertEqual((srv['web1']['total'], srv['web2']['total']), (20, 10))
        findings, verdict = self.explain()
        self.assertEqual(findings, [
            'finding: uneven web1 66.7 % of the connections of the 2 up servers of weight 1 '
            '(20 of 30, 1.33x the mean) in the last minute, with no cause found above'])
        self.assertEqual(verdict, 'uneven')

    def test_balanced_pool(self):
        web = [self.backend(harness.HttpBackend, n) for n in ('web1', 'web2', 'web3')]
        self.start([(b.name, b) for b in web])
        got = self.traffic(30)
        self.assertEqual([got.count(b.name) for b in web], [10, 10, 10])
        findings, verdict = self.explain()
        self.assertEqual(findings, ['finding: balanced p 3 servers up; in the last minute '
                                    '30 connections and 30 requests, the busiest at 1.00x '
                                    'the mean share'])
        self.assertEqual(verdict, 'balanced')

    # ------------------------------------------------------------ errors

    def test_explain_errors(self):
        self.start([('web1', self.backend(harness.HttpBackend, 'web1'))])
        self.assertEqual(self.lb.stats('explain nosuchpool'),
                         "error: no pool 'nosuchpool'\n\n")
        self.assertEqual(self.lb.stats('explain'), 'error: usage: explain POOL\n\n')
        self.assertTrue(self.lb.stats('explain p q').startswith('error: usage: explain POOL'))
        # the socket still answers
        self.assertTrue(self.lb.stats('explain p').startswith('finding: balanced p '))


if __name__ == '__main__':
    unittest.main()
