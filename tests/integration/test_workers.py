"""Even workers (docs/performance.md: Even workers; docs/observability.md:
show info): connections that SO_REUSEPORT's hash spreads unevenly are
handed to the least loaded worker, so long-lived connections end up within
HANDOFF_SLACK + 1 of each other per worker; `show info` says how many each
worker holds and served, and how many were handed over. Every handed
connection relays byte-exact and is counted once."""

import unittest

import harness

SLACK = 2               # HANDOFF_SLACK in include/handoff.h


def per_worker(value):
    """A per-worker line of show info as numbers (one worker: a number)."""
    return [int(x) for x in str(value).split()]


class EvenWorkersTest(harness.TcplbTestCase):

    def start(self, workers, n_clients=None, mode='tcp'):
        self.echo = self.backend(harness.EchoBackend)
        cfg = self.config(workers=workers)
        port = cfg.listener('l', pool='p', mode=mode)
        cfg.pool('p', [('e', self.echo)])
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        return lb, port

    def hold(self, port, n):
        """n open connections through tcplb, each from its own source
        address so that the kernel's hash spreads them as real clients."""
        socks = []
        for i in range(n):
            socks.append(self.connect(port, source=harness.client_ip(i)))
        return socks

    def test_50_connections_on_two_workers_are_within_the_slack(self):
        lb, port = self.start(workers=2)
        socks = self.hold(port, 50)
        ok = harness.wait_until(lambda: sum(per_worker(harness.show_info(lb)['workers_active'])) == 50,
                                5)
        i = harness.show_info(lb)
        self.assertTrue(ok, i)
        active = per_worker(i['workers_active'])
        self.assertEqual(len(active), 2, i)
        self.assertLessEqual(max(active) - min(active), SLACK + 1, i)
        self.assertLessEqual(max(active) / (sum(active) / 2), 1.1, i)
        # every connection relays, handed over or not, byte for byte
        for k, s in enumerate(socks):
            msg = b'%d:' % k + bytes(range(256)) * 4
            s.sendall(msg)
            self.assertEqual(harness.recv_exact(s, len(msg)), msg)
        for s in socks:
            s.close()
        js = self.settled_stats(lb)
        self.assertEqual(harness.find_listener(js, 'l')['total'], 50)
        self.assertEqual(harness.find_server(js, 'p', 'e')['total'], 50)
        i = harness.show_info(lb)
        self.assertEqual(per_worker(i['workers_active']), [0, 0], i)
        self.assertEqual(sum(per_worker(i['workers_total'])), 50, i)
        self.assertEqual(i['total'], 50)
        # what was handed over is what one worker served beyond its accepts;
        # it cannot exceed the connections made
        self.assertLessEqual(i['handed_off'], 50)

    def test_four_workers_even_too(self):
        lb, port = self.start(workers=4)
        self.hold(port, 60)
        self.assertTrue(harness.wait_until(
            lambda: sum(per_worker(harness.show_info(lb)['workers_active'])) == 60, 5), harness.show_info(lb))
        active = per_worker(harness.show_info(lb)['workers_active'])
        self.assertEqual(len(active), 4)
        self.assertLessEqual(max(active) - min(active), SLACK + 1, active)

    def test_accept_balance_off_leaves_the_kernel_spread(self):
        self.echo = self.backend(harness.EchoBackend)
        cfg = self.config(workers=4, accept_balance='off')
        port = cfg.listener('l', pool='p')
        cfg.pool('p', [('e', self.echo)])
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        socks = self.hold(port, 40)
        self.assertTrue(harness.wait_until(
            lambda: sum(per_worker(harness.show_info(lb)['workers_active'])) == 40, 5), harness.show_info(lb))
        i = harness.show_info(lb)
        self.assertEqual(i['handed_off'], 0, i)
        self.assertEqual(sum(per_worker(i['workers_total'])), 40, i)
        for s in socks:
            s.sendall(b'pong')
            self.assertEqual(harness.recv_exact(s, 4), b'pong')

    def test_one_worker_hands_nothing(self):
        lb, port = self.start(workers=1)
        self.hold(port, 10)
        self.assertTrue(harness.wait_until(
            lambda: per_worker(harness.show_info(lb)['workers_active']) == [10], 5), harness.show_info(lb))
        self.assertEqual(harness.show_info(lb)['handed_off'], 0)

    def test_http_mode_answers_through_handed_connections(self):
        web = self.backend(harness.HttpBackend, 'w')
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('w', web)])
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        socks = self.hold(port, 30)
        for s in socks:
            s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        for s in socks:
            r = harness.read_http_response(s)
            self.assertEqual(r.status, 200)
        active = per_worker(harness.show_info(lb)['workers_active'])
        self.assertLessEqual(max(active) - min(active), SLACK + 1, active)
        js = lb.stats_json()
        self.assertEqual(harness.find_server(js, 'p', 'w')['requests'], 30)

    def test_reload_while_connections_are_held(self):
        lb, port = self.start(workers=2)
        socks = self.hold(port, 20)
        lb.signal(__import__('signal').SIGHUP)
        self.assertTrue(harness.wait_until(
            lambda: 'reloaded' in harness.tcplb_output(lb), 5))
        socks += self.hold(port, 20)
        self.assertTrue(harness.wait_until(
            lambda: sum(per_worker(harness.show_info(lb)['workers_active'])) == 40, 5), harness.show_info(lb))
        active = per_worker(harness.show_info(lb)['workers_active'])
        self.assertLessEqual(max(active) - min(active), SLACK + 1, active)
        for s in socks:
            s.sendall(b'ping')
            self.assertEqual(harness.recv_exact(s, 4), b'ping')


if __name__ == '__main__':
    unittest.main()
