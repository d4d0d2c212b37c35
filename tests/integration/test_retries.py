"""A failed connect is counted on the server and retried on another one
(docs/reference.md: Scheduling): clients never see a dead server."""

import collections
import unittest

import harness


class RetriesTest(harness.TcplbTestCase):

    def test_dead_server_is_skipped_with_retries(self):
        a = self.backend(harness.HttpBackend, 'a')
        c = self.backend(harness.HttpBackend, 'c')
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', a), ('dead', dead), ('c', c)], retries=2)
        lb = self.tcplb(cfg)
        n = 90
        seen = collections.Counter()
        failures = []
        for i in range(n):
            try:
                r = harness.http_request(port)
            except (OSError, AssertionError) as e:
                failures.append((i, repr(e)))
                continue
            if r.status != 200:
                failures.append((i, r.status_line))
            seen[r.headers.get('x-backend')] += 1
        self.assertEqual(failures, [], 'client failures')
        self.assertEqual(set(seen), {'a', 'c'})
        self.assertEqual(sum(seen.values()), n)
        js = self.settled_stats(lb, lambda js: sum(
            harness.find_server(js, 'p', nm)['total'] for nm in 'ac') == n)
        srv = {nm: harness.find_server(js, 'p', nm) for nm in ('a', 'dead', 'c')}
        self.assertGreater(srv['dead']['failed'], 0)
        self.assertEqual(srv['dead']['total'], 0)
        self.assertEqual(srv['a']['total'] + srv['c']['total'], n)
        self.assertEqual({nm: srv[nm]['total'] for nm in 'ac'}, dict(seen))
        self.assertEqual(srv['a']['failed'] + srv['c']['failed'], 0)
        lst = harness.find_listener(js, 'web')
        self.assertEqual((lst['total'], lst['rejected']), (n, 0))


if __name__ == '__main__':
    unittest.main()
