"""Round robin is exact (docs/reference.md: Scheduling) whatever the number of workers,
seen by the client, by the backends and by `show stat` (section 6)."""

import collections
import unittest

import harness


class RoundRobinTest(harness.TcplbTestCase):

    def run_split(self, weights, n):
        names = ['a', 'b', 'c'][:len(weights)]
        backends = [self.backend(harness.HttpBackend, nm) for nm in names]
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [(nm, b, 'weight=%d' % w)
                       for nm, b, w in zip(names, backends, weights)])
        lb = self.tcplb(cfg)
        seen = collections.Counter()
        for _ in range(n):
            r = harness.http_request(port)
            self.assertEqual(r.status, 200, r)
            seen[r.headers.get('x-backend')] += 1
        total = sum(weights)
        want = {nm: n * w // total for nm, w in zip(names, weights)}
        self.assertEqual(dict(seen), want, 'X-Backend answers')
        harness.wait_until(lambda: sum(b.requests for b in backends) >= n, 3)
        self.assertEqual({b.name: b.requests for b in backends}, want,
                         'requests the backends served')
        js = self.settled_stats(lb, lambda js: all(
            harness.find_server(js, 'p', nm)['total'] == want[nm] for nm in names))
        self.assertEqual({nm: harness.find_server(js, 'p', nm)['total']
                          for nm in names}, want, 'show stat json total')
        self.assertEqual({nm: harness.find_server(js, 'p', nm)['failed']
                          for nm in names}, dict.fromkeys(names, 0),
                         'show stat json failed')

    def test_equal_weights_split_300_connections_100_each(self):
        self.run_split([1, 1, 1], 300)

    def test_weights_1_2_3_split_600_connections_100_200_300(self):
        self.run_split([1, 2, 3], 600)

    def test_show_stat_csv_header_and_one_line_per_server(self):
        backends = [self.backend(harness.HttpBackend, nm) for nm in 'abc']
        cfg = self.config()
        cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', backends[0]), ('b', backends[1], 'weight=2'),
                       ('c', backends[2], 'weight=3')])
        lb = self.tcplb(cfg)
        text = lb.stats('show stat')
        lines = text.split('\n')
        header = harness.STAT_CSV_HEADER
        self.assertTrue(lines[0] == header or lines[0].startswith(header + ','),
                        'first line: %r' % lines[0])
        rows = [ln.split(',') for ln in lines[1:] if ln and not ln.startswith('#')]
        self.assertEqual(sorted((r[0], r[1]) for r in rows),
                         [('p', 'a'), ('p', 'b'), ('p', 'c')], text)
        by_name = {r[1]: r for r in rows}
        for nm, b, w in zip('abc', backends, (1, 2, 3)):
            row = by_name[nm]
            self.assertGreaterEqual(len(row), 10, row)
            self.assertEqual(row[2], b.addr, row)
            self.assertEqual(row[3], 'up', row)
            self.assertEqual(row[4], str(w), row)
            self.assertEqual(row[5:10], ['0'] * 5, row)


if __name__ == '__main__':
    unittest.main()
