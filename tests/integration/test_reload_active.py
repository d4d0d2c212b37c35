"""Reload keeps `active` exact (docs/reference.md, "Reload"): connections
opened before a SIGHUP keep counting on their server, matched by name,
whatever else the reload changed in the pool, so leastconn, maxconn,
client_maxconn and show stat see them; they give their count back when they
end, and a server the reload removed lets its connections finish. Every
state change a reload causes is an event with the reason `reload`."""

import re
import time

import harness
import test_reload


def actives(lb, pool='p'):
    """{server: active} of the pool in show stat json."""
    js = lb.stats_json()
    for p in js['pools']:
        if p['name'] == pool:
            return {s['name']: s['active'] for s in p['servers']}
    raise AssertionError('no pool %s: %s' % (pool, js))


def csv_actives(lb):
    """{server: active} from the show stat CSV, the operator's first view."""
    lines = lb.stats('show stat').strip().splitlines()
    head = lines[0].lstrip('# ').split(',')
    rows = [dict(zip(head, ln.split(','))) for ln in lines[1:]]
    return {r['server']: int(r['active']) for r in rows}


class ActiveAcrossReloadTest(test_reload.ReloadTestCase):

    def setUp(self):
        super().setUp()
        self.port = harness.free_port()
        self.backends = {n: self.backend(harness.EchoBackend, n)
                         for n in ('s1', 's2', 's3')}

    def cfg(self, names, scheduler='leastconn', options='', **pool_keys):
        cfg = self.config()
        cfg.listener('web', pool='p', port=self.port)
        cfg.pool('p', [(n, self.backends[n], options) for n in names],
                 scheduler=scheduler, **pool_keys)
        return cfg

    def open_idle(self, n, source='127.0.0.2'):
        """n connections through tcplb, each proven placed by one echoed
        byte, left open."""
        socks = []
        for _ in range(n):
            s = self.connect(self.port, source=source)
            s.sendall(b'x')
            self.assertEqual(harness.recv_exact(s, 1), b'x')
            socks.append(s)
        return socks

    def close_all(self, socks):
        for s in socks:
            s.close()

    def wait_actives(self, lb, want, pool='p'):
        got = harness.wait_until(lambda: actives(lb, pool) == want and want, 3)
        self.assertEqual(actives(lb, pool), want)
        return got

    def test_added_server_takes_the_new_connections_under_leastconn(self):
        lb = self.tcplb(self.cfg(['s1', 's2'], client_maxconn=15))
        first = self.open_idle(10)
        self.wait_actives(lb, {'s1': 5, 's2': 5})
        self.reload(lb, self.cfg(['s1', 's2', 's3'], client_maxconn=15))
        # the ten connections opened before the reload still count
        self.assertEqual(actives(lb), {'s1': 5, 's2': 5, 's3': 0})
        self.assertEqual(csv_actives(lb), {'s1': 5, 's2': 5, 's3': 0})
        # so leastconn sends the next five all to s3
        more = self.open_idle(5)
        self.wait_actives(lb, {'s1': 5, 's2': 5, 's3': 5})
        self.assertEqual(self.backends['s3'].connections, 5)
        # the client's 15 open connections are still counted: a 16th is refused
        self.assertEqual(lb.stats('show clients p').split()[:3], ['127.0.0.2', '15', '15'])
        extra = self.connect(self.port, source='127.0.0.2')
        self.assertEqual(harness.recv_until_eof(extra), b'')
        self.close_all(first + more)
        js = self.settled_stats(lb)
        self.assertEqual(actives(lb), {'s1': 0, 's2': 0, 's3': 0})
        self.assertEqual(harness.find_listener(js, 'web')['active'], 0)
        self.assertEqual(lb.stats('show clients p').split()[:3], ['127.0.0.2', '15', '0'])

    def test_maxconn_still_holds_for_connections_opened_before_the_reload(self):
        keys = dict(scheduler='roundrobin', options='maxconn=2', queue_timeout='200ms')
        lb = self.tcplb(self.cfg(['s1', 's2'], **keys))
        before = self.open_idle(4)
        self.wait_actives(lb, {'s1': 2, 's2': 2})
        self.reload(lb, self.cfg(['s1', 's2', 's3'], **keys))
        after = self.open_idle(2)
        self.wait_actives(lb, {'s1': 2, 's2': 2, 's3': 2})
        self.assertEqual((self.backends['s1'].connections,
                          self.backends['s2'].connections,
                          self.backends['s3'].connections), (2, 2, 2))
        # every server is full: the next connection waits, then is closed
        late = self.connect(self.port)
        self.assertEqual(harness.recv_until_eof(late), b'')
        self.assertEqual(self.backends['s1'].connections, 2)
        self.close_all(before + after)
        self.settled_stats(lb)
        self.assertEqual(actives(lb), {'s1': 0, 's2': 0, 's3': 0})

    def test_connections_of_a_removed_server_finish_cleanly(self):
        lb = self.tcplb(self.cfg(['s1', 's2'], scheduler='roundrobin'))
        socks = self.open_idle(4)
        self.wait_actives(lb, {'s1': 2, 's2': 2})
        self.reload(lb, self.cfg(['s1', 's3'], scheduler='roundrobin'))
        self.assertEqual(actives(lb), {'s1': 2, 's3': 0})
        # s2's connections still relay, byte for byte, then end normally
        for s in socks:
            s.sendall(b'after the reload')
            self.assertEqual(harness.recv_exact(s, 16), b'after the reload')
        for s in socks:
            s.shutdown(2 - 1)               # SHUT_WR: a clean end
            self.assertEqual(harness.recv_until_eof(s), b'')
        self.close_all(socks)
        js = self.settled_stats(lb)
        self.assertEqual(actives(lb), {'s1': 0, 's3': 0})
        self.assertEqual(harness.find_listener(js, 'web')['active'], 0)
        def terms():
            return [re.search(r'term=(\w+)', ln).group(1)
                    for ln in harness.access_log_lines(lb) if 'term=' in ln]
        harness.wait_until(lambda: len(terms()) >= 4, 3)
        self.assertEqual(terms(), ['ok'] * 4)
        self.assertTrue(lb.running())

    def test_two_reloads_in_a_row_keep_counting(self):
        lb = self.tcplb(self.cfg(['s1', 's2']))
        socks = self.open_idle(6)
        self.wait_actives(lb, {'s1': 3, 's2': 3})
        self.reload(lb, self.cfg(['s2', 's1', 's3']))        # reordered and one more
        self.assertEqual(actives(lb), {'s1': 3, 's2': 3, 's3': 0})
        self.reload(lb, self.cfg(['s3', 's1']))               # s2 removed
        self.assertEqual(actives(lb), {'s1': 3, 's3': 0})
        more = self.open_idle(3)
        self.wait_actives(lb, {'s1': 3, 's3': 3})
        self.close_all(socks + more)
        self.settled_stats(lb)
        self.assertEqual(actives(lb), {'s1': 0, 's3': 0})


class ReloadEventsTest(test_reload.ReloadTestCase):

    def test_down_server_reloaded_into_health_none_is_an_up_event(self):
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        live = self.backend(harness.EchoBackend, 'live')

        def cfg(health):
            c = self.config()
            self.port = c.listener('web', pool='p', port=getattr(self, 'port', None))
            c.pool('p', [('d', dead), ('l', live)], health=health,
                   health_interval='200ms', rise=1, fall=1)
            return c

        lb = self.tcplb(cfg('tcp'))
        self.assertTrue(harness.wait_server_state(lb, 'p', 'd', 'down', 3))
        self.reload(lb, cfg('none'))
        self.assertEqual(harness.server_state(lb, 'p', 'd'), 'up')
        events = lb.stats('show events').strip().splitlines()
        ups = [e for e in events if ' p/d down->up ' in e]
        self.assertEqual(len(ups), 1, events)
        self.assertIn('reload', ups[0])
        # a reload that changes nothing for a server records nothing for it
        n = len(events)
        self.reload(lb, cfg('none'))
        time.sleep(0.3)
        self.assertEqual(len(lb.stats('show events').strip().splitlines()), n)
