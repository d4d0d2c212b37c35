"""Scheduling by client IP (docs/reference.md: Configuration; Scheduling; Stats socket): `persist = source`
(stick table, `persist_timeout`, `persist_max`), `scheduler = source` (Maglev,
deterministic across processes) with `balance_factor`, the per-server
`maxconn` queue with `queue_timeout`, and `show clients`.

Clients bind to 127.0.0.2, 127.0.0.3, ... (harness.client_ip) before
connecting, so tcplb sees many client IPs on one machine. Which server a
connection reached is read from the backend's `X-Backend` header."""

import collections
import math
import os
import threading
import time
import unittest

import harness

ip = harness.client_ip


def answer_lines(text):
    """The lines of one stats answer, without the empty line that ends it."""
    return [ln for ln in text.split('\n') if ln]


class SchedulingTestCase(harness.TcplbTestCase):

    def backends(self, names, cls=harness.HttpBackend, **kwargs):
        return [self.backend(cls, nm, **kwargs) for nm in names]

    def http_lb(self, backends, workers=2, tmpdir=None, **pool_keys):
        """tcplb with listener `web` (mode http) on pool `p` over backends
        (server names = backend names); returns (lb, port)."""
        if tmpdir is None:
            cfg = self.config(workers=workers)
        else:
            os.makedirs(tmpdir, exist_ok=True)
            cfg = harness.Config(tmpdir, workers=workers)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [(b.name, b) for b in backends], **pool_keys)
        return self.tcplb(cfg), port

    def server_for(self, port, client):
        """One request from IP client; the name of the backend that answered."""
        r = harness.http_request(port, source=client)
        self.assertEqual(r.status, 200, '%s: %r' % (client, r))
        return r.headers.get('x-backend')

    def open_from(self, port, client):
        """A keep-alive connection from IP client that has had one answer and
        stays open (until cleanup); returns the backend name."""
        s = self.connect(port, source=client)
        r = harness.http_request(port, close=False, sock=s)
        self.assertEqual(r.status, 200, '%s: %r' % (client, r))
        return r.headers.get('x-backend')

    def show_clients(self, lb, args=''):
        """`show clients ARGS` parsed into (ip, total, active, server) rows,
        after checking every line has exactly those four fields."""
        text = lb.stats(('show clients ' + args).strip())
        self.assertTrue(text.endswith('\n\n'), repr(text))
        rows = []
        for line in answer_lines(text):
            f = line.split(' ')
            self.assertEqual(len(f), 4, 'line %r of %r' % (line, text))
            self.assertTrue(f[1].isdigit() and f[2].isdigit(), line)
            rows.append((f[0], int(f[1]), int(f[2]), f[3]))
        return rows

    def actives(self, lb, names, want_sum=None):
        """Server -> active from `show stat json` (once they sum to want_sum)."""
        def probe():
            js = lb.stats_json()
            act = {nm: harness.find_server(js, 'p', nm)['active'] for nm in names}
            return act if want_sum is None or sum(act.values()) == want_sum else None
        return harness.wait_until(probe, 3) or {
            nm: harness.find_server(lb.stats_json(), 'p', nm)['active']
            for nm in names}


# ------------------------------------------------------------ persist = source

class PersistSourceTest(SchedulingTestCase):

    def test_same_ip_sticks_to_one_server_over_roundrobin(self):
        backends = self.backends('abc')
        lb, port = self.http_lb(backends, scheduler='roundrobin',
                                persist='source', persist_timeout='30s')
        seen = collections.defaultdict(list)
        for _ in range(5):
            for i in range(20):
                seen[ip(i)].append(self.server_for(port, ip(i)))
        moved = {c: s for c, s in seen.items() if len(set(s)) != 1}
        self.assertEqual(moved, {}, 'IPs that saw more than one server')
        per_server = collections.Counter(s[0] for s in seen.values())
        # the 20 first connections were scheduled by exact round robin
        self.assertEqual(sorted(per_server.values()), [6, 7, 7], per_server)
        self.assertEqual(set(per_server), {'a', 'b', 'c'})
        js = self.settled_stats(lb, lambda js: sum(
            harness.find_server(js, 'p', b.name)['total'] for b in backends) == 100)
        self.assertEqual({b.name: harness.find_server(js, 'p', b.name)['total']
                          for b in backends},
                         {nm: 5 * n for nm, n in per_server.items()})
        rows = self.show_clients(lb, 'p 100')
        self.assertEqual(sorted(rows),
                         sorted((c, 5, 0, s[0]) for c, s in seen.items()))

    def test_persistence_expires_after_persist_timeout_idle(self):
        # Round robin over two servers is exact, so the expected server is
        # known: A's first connection takes S1 and leaves S2 next; sticky
        # hits do not move round robin; B and C take S2 and S1; after A's
        # entry expires, A is scheduled afresh and gets S2.
        backends = self.backends('ab')
        lb, port = self.http_lb(backends, scheduler='roundrobin',
                                persist='source', persist_timeout='500ms')
        a, b, c = ip(0), ip(1), ip(2)
        s1 = self.server_for(port, a)
        s2 = ({'a', 'b'} - {s1}).pop()
        # Within the timeout A sticks, though round robin would say S2; each
        # use refreshes the entry, so 4 x 0.2 s (longer than 500 ms) in all.
        for k in range(4):
            time.sleep(0.2)
            self.assertEqual(self.server_for(port, a), s1, 'sticky use %d' % k)
        self.assertEqual(self.server_for(port, b), s2, 'B, a new IP')
        self.assertEqual(self.server_for(port, c), s1, 'C, a new IP')
        time.sleep(1.0)
        self.assertEqual(self.server_for(port, a), s2,
                         'A after 1 s idle: scheduled afresh (round robin)')
        self.assertEqual(self.server_for(port, a), s2, 'A sticks to its new server')
        self.settled_stats(lb)
        rows = {r[0]: r for r in self.show_clients(lb, 'p')}
        self.assertEqual(rows[a], (a, 7, 0, s2))

    def test_drain_keeps_persistent_clients_but_takes_no_new_ones(self):
        backends = self.backends('ab')
        lb, port = self.http_lb(backends, scheduler='roundrobin',
                                persist='source', persist_timeout='30s')
        if 'drain server' not in lb.stats('help'):
            self.skipTest('no `drain server` command on the stats socket yet')
        s1 = self.server_for(port, ip(0))
        s2 = ({'a', 'b'} - {s1}).pop()
        answer = lb.stats('drain server p/%s' % s1)
        self.assertFalse(answer.startswith('error:'), answer)
        for k in range(3):
            self.assertEqual(self.server_for(port, ip(0)), s1,
                             'persistent client %d' % k)
        for i in range(1, 5):
            self.assertEqual(self.server_for(port, ip(i)), s2, 'new IP %d' % i)


class PersistMaxTest(SchedulingTestCase):
    """`persist_max` bounds the stick table (docs/scheduling.md: at most
    persist_max IPs; beyond that the least recently used are forgotten)."""

    def test_persist_max_keeps_every_client_while_the_table_has_room(self):
        # 64 IPs in a table for 128: none may be forgotten, so none moves.
        backends = self.backends('ab')
        lb, port = self.http_lb(backends, scheduler='roundrobin',
                                persist='source', persist_timeout='30s',
                                persist_max=128)
        seen = collections.defaultdict(list)
        for _ in range(2):
            for i in range(64):
                seen[ip(i)].append(self.server_for(port, ip(i)))
        moved = sorted(c for c, s in seen.items() if len(set(s)) != 1)
        self.assertEqual(moved, [], 'IPs that lost their server with the '
                         'table half full')
        self.settled_stats(lb)
        self.assertEqual(len(self.show_clients(lb, 'p 1000')), 64)

    def test_persist_max_bounds_the_table_and_keeps_the_newest(self):
        backends = self.backends('ab')
        lb, port = self.http_lb(backends, scheduler='roundrobin',
                                persist='source', persist_timeout='30s',
                                persist_max=4)
        last = {}
        for i in range(20):
            last[ip(i)] = self.server_for(port, ip(i))
        self.settled_stats(lb)
        rows = self.show_clients(lb, 'p 1000')
        self.assertLessEqual(len(rows), 4, 'entries after 20 IPs with '
                             'persist_max = 4: %s' % [r[0] for r in rows])
        self.assertIn((ip(19), 1, 0, last[ip(19)]), rows, 'the newest IP is kept')
        self.assertEqual(self.server_for(port, ip(19)), last[ip(19)],
                         'the newest IP still sticks')


# ------------------------------------------------------------ scheduler = source

class SourceHashTest(SchedulingTestCase):

    def test_source_hash_sends_each_ip_always_to_the_same_server(self):
        backends = self.backends('abc')
        lb, port = self.http_lb(backends, scheduler='source')
        seen = collections.defaultdict(set)
        for _ in range(3):
            for i in range(50):
                seen[ip(i)].add(self.server_for(port, ip(i)))
        moved = {c: s for c, s in seen.items() if len(s) != 1}
        self.assertEqual(moved, {}, 'IPs that saw more than one server')
        used = collections.Counter(min(s) for s in seen.values())
        self.assertEqual(set(used), {'a', 'b', 'c'}, 'IPs per server: %s' % used)

    def test_two_tcplb_processes_agree_on_200_ips(self):
        backends = self.backends('abc')
        lb1, port1 = self.http_lb(backends, scheduler='source', workers=1)
        lb2, port2 = self.http_lb(backends, scheduler='source', workers=2,
                                  tmpdir=os.path.join(self.tmp, 'second'))
        self.assertNotEqual(lb1.pid, lb2.pid)
        ips = [ip(i) for i in range(200)]
        map1 = {c: self.server_for(port1, c) for c in ips}
        map2 = {c: self.server_for(port2, c) for c in ips}
        differ = {c: (map1[c], map2[c]) for c in ips if map1[c] != map2[c]}
        self.assertEqual(differ, {}, 'IPs the two processes place differently')
        used = collections.Counter(map1.values())
        self.assertEqual(set(used), {'a', 'b', 'c'}, used)
        # every share within 2x of a third: a hash, not a degenerate table
        for nm, n in used.items():
            self.assertGreater(n, 200 // 3 // 2, used)


class HotClientTest(SchedulingTestCase):
    """One hot IP holds 12 open connections, 8 other IPs one each, over 4
    servers with scheduler = source."""

    NAMES = 'abcd'
    HOT_CONNS = 12
    OTHERS = 8

    def open_hot_workload(self, **pool_keys):
        backends = self.backends(self.NAMES)
        lb, port = self.http_lb(backends, scheduler='source', **pool_keys)
        hot = ip(0)
        where = collections.Counter()
        for i in range(1, self.OTHERS + 1):
            where[self.open_from(port, ip(i))] += 1
        hot_where = collections.Counter()
        for _ in range(self.HOT_CONNS):
            hot_where[self.open_from(port, hot)] += 1
        where.update(hot_where)
        total = self.HOT_CONNS + self.OTHERS
        act = self.actives(lb, self.NAMES, want_sum=total)
        self.assertEqual(act, {nm: where[nm] for nm in self.NAMES},
                         'show stat json active vs the backends that answered')
        rows = self.show_clients(lb, 'p')
        self.assertEqual(len(rows), 1 + self.OTHERS, rows)
        self.assertEqual(rows[0][:3], (hot, self.HOT_CONNS, self.HOT_CONNS),
                         'hot IP first in show clients: %s' % rows)
        self.assertIn(rows[0][3], hot_where, rows[0])
        self.assertEqual(sorted(r[1:3] for r in rows[1:]), [(1, 1)] * self.OTHERS)
        return act, hot_where

    def test_without_balance_factor_hot_client_piles_on_one_server(self):
        act, hot_where = self.open_hot_workload()
        self.assertEqual(len(hot_where), 1, hot_where)
        (server, n), = hot_where.items()
        self.assertEqual(n, self.HOT_CONNS)
        self.assertGreaterEqual(act[server], self.HOT_CONNS, act)

    def test_balance_factor_125_spills_hot_client_and_bounds_active(self):
        act, hot_where = self.open_hot_workload(balance_factor=125)
        total = self.HOT_CONNS + self.OTHERS
        bound = math.ceil(1.25 * total / len(self.NAMES)) + 1
        self.assertLessEqual(max(act.values()), bound, act)
        self.assertGreaterEqual(len(hot_where), 2,
                                'hot client spilled to other servers: %s' % hot_where)
        self.assertLess(max(hot_where.values()), self.HOT_CONNS, hot_where)


# ------------------------------------------------------------ maxconn queue

class MaxconnQueueTest(SchedulingTestCase):

    def timed_clients(self, port, n, spacing, mode='http'):
        """Starts n clients spacing seconds apart (IP i for client i), each
        in its own thread; returns [(start, end, status-or-bytes)]."""
        results = [None] * n
        t0 = time.monotonic() + 0.05

        def run(i):
            time.sleep(max(0.0, t0 + i * spacing - time.monotonic()))
            start = time.monotonic()
            try:
                r = harness.http_request(port, source=ip(i))
                out = (r.status, r.headers.get('connection', '').lower(),
                       'content-length' in r.headers, r.eof)
            except (OSError, AssertionError) as e:
                out = repr(e)
            results[i] = (start, time.monotonic(), out)

        threads = [threading.Thread(target=run, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertNotIn(None, results, 'a client thread did not finish')
        return results

    def test_maxconn_queue_serves_clients_in_arrival_order(self):
        slow = self.backend(harness.HttpBackend, 'slow', delay=0.3)
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('slow', slow, 'maxconn=1')], queue_timeout='2s')
        lb = self.tcplb(cfg)
        res = self.timed_clients(port, 5, 0.03)
        self.assertEqual([r[2] for r in res], [(200, 'close', True, True)] * 5, res)
        starts = [r[0] for r in res]
        ends = [r[1] for r in res]
        self.assertEqual(sorted(range(5), key=lambda i: starts[i]), list(range(5)))
        self.assertEqual(sorted(range(5), key=lambda i: ends[i]), list(range(5)),
                         'completion order: %s' % [round(e - starts[0], 3) for e in ends])
        gaps = [ends[i] - ends[i - 1] for i in range(1, 5)]
        for g in gaps:
            self.assertTrue(0.25 <= g <= 0.7, 'gaps between answers: %s' % gaps)
        # maxconn=1: the backend never held two requests at once
        arr = sorted(slow.arrivals)
        self.assertEqual(len(arr), 5)
        self.assertTrue(all(b - a >= 0.28 for a, b in zip(arr, arr[1:])),
                        'request arrivals at the backend: %s' % arr)
        js = self.settled_stats(lb, lambda js: harness.find_server(
            js, 'p', 'slow')['total'] == 5)
        lst = harness.find_listener(js, 'web')
        self.assertEqual((lst['total'], lst['rejected']), (5, 0))
        self.assertEqual(harness.find_server(js, 'p', 'slow')['total'], 5)

    def test_queue_timeout_answers_complete_503_in_http_mode(self):
        # maxconn=3 and answers after 1.5 s: three clients are served, the
        # 4th waits in the queue and gets 503 at queue_timeout (500 ms).
        slow = self.backend(harness.HttpBackend, 'slow', delay=1.5)
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('slow', slow, 'maxconn=3')], queue_timeout='500ms')
        lb = self.tcplb(cfg)
        res = self.timed_clients(port, 4, 0.03)
        self.assertEqual([r[2] for r in res[:3]], [(200, 'close', True, True)] * 3,
                         res)
        start, end, out = res[3]
        self.assertEqual(out, (503, 'close', True, True), res)
        self.assertTrue(0.4 <= end - start <= 1.2,
                        '503 after %.3f s, queue_timeout 500ms' % (end - start))
        self.assertLess(end, min(r[1] for r in res[:3]),
                        'the 503 came before the served clients finished')
        js = self.settled_stats(lb, lambda js: harness.find_listener(
            js, 'web')['total'] == 4)
        lst = harness.find_listener(js, 'web')
        self.assertEqual((lst['total'], lst['rejected']), (4, 1))
        self.assertEqual(harness.find_server(js, 'p', 'slow')['total'], 3)
        self.assertTrue(harness.wait_until(lambda: 'term=queue_timeout' in
                                           open(lb.log_path).read(), 3),
                        'access log has term=queue_timeout')

    def test_queue_timeout_closes_without_a_byte_in_tcp_mode(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        cfg = self.config(workers=2)
        port = cfg.listener('raw', pool='p', mode='tcp')
        cfg.pool('p', [('echo', echo, 'maxconn=1')], queue_timeout='500ms')
        lb = self.tcplb(cfg)
        holder = self.connect(port, source=ip(0))
        holder.sendall(b'hold')
        self.assertEqual(harness.recv_exact(holder, 4), b'hold')
        queued = self.connect(port, source=ip(1), timeout=5)
        t = time.monotonic()
        data = harness.recv_until_eof(queued)
        waited = time.monotonic() - t
        self.assertEqual(data, b'', 'the timed-out client got bytes')
        self.assertTrue(0.4 <= waited <= 1.5, 'closed after %.3f s' % waited)
        holder.sendall(b'still')
        self.assertEqual(harness.recv_exact(holder, 5), b'still')
        js = lb.stats_json()
        lst = harness.find_listener(js, 'raw')
        self.assertEqual((lst['total'], lst['rejected'], lst['active']), (2, 1, 1))


# ------------------------------------------------------------ show clients

class ShowClientsTest(SchedulingTestCase):

    def setUp(self):
        super().setUp()
        self.ab = self.backends('ab')
        self.x = self.backend(harness.HttpBackend, 'x')
        cfg = self.config(workers=2)
        self.port = cfg.listener('web', pool='p', mode='http')
        self.qport = cfg.listener('other', pool='q', mode='http')
        cfg.pool('p', [(b.name, b) for b in self.ab])
        cfg.pool('q', [('x', self.x)])
        self.lb = self.tcplb(cfg)
        # pool p: IP0 3 connections, IP1 2, IP2 1; pool q: IP3 4
        self.last = {}
        for client, n in ((ip(0), 3), (ip(1), 2), (ip(2), 1)):
            for _ in range(n):
                self.last[client] = self.server_for(self.port, client)
        for _ in range(4):
            self.server_for(self.qport, ip(3))
        self.settled_stats(self.lb)

    def test_show_clients_pool_n_gives_n_busiest_lines(self):
        text = self.lb.stats('show clients p 2')
        lines = answer_lines(text)
        self.assertEqual(len(lines), 2, text)
        self.assertEqual(text, '\n'.join(lines) + '\n\n')
        self.assertEqual(self.show_clients(self.lb, 'p 2'),
                         [(ip(0), 3, 0, self.last[ip(0)]),
                          (ip(1), 2, 0, self.last[ip(1)])])
        self.assertEqual(self.show_clients(self.lb, 'p 1000'),
                         [(ip(0), 3, 0, self.last[ip(0)]),
                          (ip(1), 2, 0, self.last[ip(1)]),
                          (ip(2), 1, 0, self.last[ip(2)])])
        self.assertEqual(self.show_clients(self.lb, 'q'), [(ip(3), 4, 0, 'x')])

    def test_show_clients_without_pool_names_pool_slash_server(self):
        self.assertEqual(self.show_clients(self.lb),
                         [(ip(3), 4, 0, 'q/x'),
                          (ip(0), 3, 0, 'p/' + self.last[ip(0)]),
                          (ip(1), 2, 0, 'p/' + self.last[ip(1)]),
                          (ip(2), 1, 0, 'p/' + self.last[ip(2)])])
        self.assertEqual(self.show_clients(self.lb, '2'),
                         [(ip(3), 4, 0, 'q/x'),
                          (ip(0), 3, 0, 'p/' + self.last[ip(0)])])

    def test_show_clients_unknown_pool_or_bad_n_is_an_error(self):
        for args in ('nosuch', 'nosuch 2', 'p 0', 'p 1001', 'p x', 'p -1',
                     'p 2x', 'p 2 3', '0', '1001'):
            text = self.lb.stats('show clients ' + args)
            self.assertTrue(text.startswith('error:'), '%s: %r' % (args, text))
            self.assertTrue(text.endswith('\n\n'), '%s: %r' % (args, text))
            self.assertEqual(len(answer_lines(text)), 1, '%s: %r' % (args, text))
        # nothing harmed: the same connection answers the next command
        text = self.lb.stats('show clients p 0;show clients p 1')
        parts = [a for a in text.split('\n\n') if a]
        self.assertEqual(len(parts), 2, text)
        self.assertTrue(parts[0].startswith('error:'), text)
        self.assertEqual(parts[1], '%s 3 0 %s' % (ip(0), self.last[ip(0)]))


if __name__ == '__main__':
    unittest.main()
