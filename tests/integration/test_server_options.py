"""Server options and the pool's TCP keepalive (docs/configuration.md:
`server` with `backup`, `check_port=N`, `source=IP`; `tcp_keepalive`,
`tcp_keepalive_idle`, `tcp_keepalive_interval`, `tcp_keepalive_count`;
man/tcplb.ini.5: SERVER OPTIONS, TCP keepalive).

Every case goes through real sockets: which backend answered is read from
its X-Backend header and from its own counters; the port a check reached
and the address a connection came from are recorded by the backends
themselves; keepalive is read from the kernel, with ss(8) and, where the
kernel allows it, with getsockopt() on tcplb's own sockets (pidfd_getfd).
States are polled with deadlines, never slept for; every load loop is
bounded in count and time."""

import collections
import ctypes
import os
import re
import shutil
import socket
import subprocess
import time
import unittest

import harness

# fast tcp checks: a server whose port closes is down after one failed check
CHECKS = dict(health='tcp', health_interval='100ms', health_timeout='100ms',
              rise=1, fall=1)
# a state change by the checks takes at most one interval plus one timeout;
# the rest is slack for a loaded machine
TAKEOVER = 1.5
WAIT = 3.0
TS = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'


# ---------------------------------------------------------------- helpers

answer_lines = harness.answer_lines


csv_rows = harness.csv_rows


def ask(port, source=None):
    """The X-Backend of one request, or 'error: ...' for anything but a 200."""
    try:
        r = harness.http_request(port, timeout=5, source=source)
    except (OSError, AssertionError) as e:
        return 'error: %r' % e
    if r.status != 200:
        return 'error: %s' % r.status_line
    return r.headers.get('x-backend')


class PeerHttpBackend(harness.HttpBackend):
    """An HttpBackend that records, for every connection, the peer address
    and the path of its first request (None for a connection that sent
    nothing, as a tcp check does) in `seen`."""

    def __init__(self, name, port=0):
        self.seen = []
        super().__init__(name, port=port)

    def serve(self, conn):
        peer = conn.getpeername()[0]
        first = conn.recv(65536, socket.MSG_PEEK)
        path = None
        if first:
            words = first.split(b'\r\n', 1)[0].split(b' ')
            path = words[1].decode('latin-1') if len(words) > 1 else ''
        with self.lock:
            self.seen.append((peer, path))
        if first:
            super().serve(conn)

    def snapshot(self):
        with self.lock:
            return list(self.seen)


class PeerEchoBackend(harness.EchoBackend):
    """An EchoBackend that records each connection's peer (ip, port)."""

    def __init__(self, name='echo'):
        self.peers = []
        super().__init__(name)

    def serve(self, conn):
        with self.lock:
            self.peers.append(conn.getpeername())
        super().serve(conn)


class AcceptBackend(harness.Backend):
    """Accepts and closes: a port that only has to be open (a check port)."""

    def serve(self, conn):
        pass


class OptionsTestCase(harness.TcplbTestCase):

    def start(self, servers, mode='http', workers=2, **pool_keys):
        """tcplb with listener `web` (mode) over pool `p`; returns (lb, port)."""
        cfg = self.config(workers=workers)
        port = cfg.listener('web', pool='p', mode=mode)
        cfg.pool('p', servers, **pool_keys)
        self.cfg = cfg
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        return lb, port

    def wait_state(self, lb, server, state, timeout=WAIT, pool='p'):
        seen = harness.wait_server_state(lb, pool, server, state, timeout)
        if seen is None:
            self.fail('%s/%s not %s within %.1fs: %s'
                      % (pool, server, state, timeout,
                         harness.json_servers(lb.stats_json(), pool).get(server)))
        return seen

    event_wait = WAIT

    def tally(self, port, n, sources=None):
        """Counter of the backends answering n requests, one connection
        each (from sources[i % len(sources)] when given); errors count
        under their 'error: ...' text."""
        got = collections.Counter()
        for i in range(n):
            got[ask(port, sources[i % len(sources)] if sources else None)] += 1
        return dict(got)

    def until_served_by(self, port, names, timeout, source=None):
        """Asks until a request is answered by one of names; returns (the
        seconds it took, the answers before). Fails after timeout."""
        t0 = time.monotonic()
        before = []
        while time.monotonic() - t0 < timeout:
            who = ask(port, source)
            if who in names:
                return time.monotonic() - t0, before
            before.append(who)
            time.sleep(0.01)
        self.fail('no request answered by %s within %.1fs; got %s'
                  % (sorted(names), timeout, collections.Counter(before)))

    def write_config(self, text, name='check.ini'):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def refused(self, server_line, pool_keys='', want=None):
        """tcplb -c -f of a file whose pool has server_line: must exit 1
        with `FILE:LINE: want` on stderr."""
        text = ('[global]\nworkers = 1\nlog = off\n\n[listener web]\n'
                'bind = 127.0.0.1:%d\npool = p\n\n[pool p]\n%s\n%s'
                % (harness.free_port(), server_line, pool_keys))
        path = self.write_config(text)
        rc, err = harness.check_config(path)
        self.assertEqual(rc, 1, 'accepted: %r\n%s' % (server_line, err))
        if want is not None:
            self.assertRegex(err, r'^%s:\d+: %s' % (re.escape(path), want), err)
        return err


# ---------------------------------------------------------------- backup

class BackupTest(OptionsTestCase):

    def primaries_and_backup(self, scheduler='roundrobin', backups=('c',), **keys):
        """Pool p: a and b on fixed ports (so they can come back), then the
        backups, checked fast; returns (lb, port, {name: backend})."""
        bs = {n: self.backend(PeerHttpBackend, n) for n in ('a', 'b') + tuple(backups)}
        servers = [('a', bs['a']), ('b', bs['b'])]
        servers += [(n, bs[n], 'backup') for n in backups]
        lb, port = self.start(servers, scheduler=scheduler, **dict(CHECKS, **keys))
        for n in bs:
            self.wait_state(lb, n, 'up')
        return lb, port, bs

    def bring_back(self, bs, name):
        """Starts a new backend where bs[name] listened."""
        old = bs[name]
        bs[name] = self.backend(PeerHttpBackend, name, port=old.port)
        return bs[name]

    def test_backup_takes_over_only_when_every_primary_is_down(self):
        """Round robin: with a and b up, c (backup) gets none of 60
        requests and is listed with backup 1 in show stat json and CSV;
        once a and b stop listening, c takes every request within the
        check bound and no request fails from then on; when a comes back,
        the traffic leaves c for a."""
        lb, port, bs = self.primaries_and_backup()
        servers = harness.json_servers(lb.stats_json())
        self.assertEqual({n: s['backup'] for n, s in servers.items()},
                         {'a': 0, 'b': 0, 'c': 1})
        rows = csv_rows(lb)
        self.assertEqual({s: rows[('p', s)]['backup'] for s in 'abc'},
                         {'a': '0', 'b': '0', 'c': '1'})
        self.assertEqual(self.tally(port, 60), {'a': 30, 'b': 30})
        self.assertEqual(bs['c'].requests, 0)
        self.assertEqual(harness.json_servers(self.settled_stats(lb))['c']['total'], 0)
        # c is checked meanwhile, like any server
        self.assertTrue(harness.wait_until(lambda: bs['c'].connections >= 3, WAIT),
                        'the backup is not checked: %d connections' % bs['c'].connections)

        bs['a'].stop()
        bs['b'].stop()
        took, before = self.until_served_by(port, {'c'}, TAKEOVER)
        self.assertTrue(set(before) <= {'a', 'b'} | {w for w in before
                                                      if w.startswith('error')},
                        before)
        self.assertEqual(self.tally(port, 30), {'c': 30},
                         'after the backup took over (%.2fs)' % took)
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'down')
        self.assertEqual(harness.server_state(lb, 'p', 'b'), 'down')

        a = self.bring_back(bs, 'a')
        took, before = self.until_served_by(port, {'a'}, TAKEOVER)
        self.assertTrue(set(before) <= {'c'}, before)
        self.assertEqual(self.tally(port, 20), {'a': 20})
        self.assertEqual(a.requests, 21)

    def test_maint_and_weight_zero_of_the_primaries_count_at_once(self):
        """The admin state counts without waiting for a check: right after
        `disable server` of a and b the next requests all go to c, right
        after `enable server p/a` all to a; `set weight p/a 0` with b in
        maint hands them to c too, `set weight p/a 1` takes them back; with
        b up, a weight of 0 on a alone keeps c out."""
        lb, port, bs = self.primaries_and_backup(health='none')
        self.assertEqual(lb.stats('disable server p/a').strip(), 'p/a maint')
        self.assertEqual(self.tally(port, 10), {'b': 10})
        self.assertEqual(lb.stats('disable server p/b').strip(), 'p/b maint')
        self.assertEqual(self.tally(port, 10), {'c': 10})
        lb.stats('enable server p/a')
        self.assertEqual(self.tally(port, 10), {'a': 10})
        lb.stats('set weight p/a 0')
        self.assertEqual(self.tally(port, 10), {'c': 10})
        lb.stats('set weight p/a 1')
        self.assertEqual(self.tally(port, 10), {'a': 10})
        lb.stats('set weight p/a 0')
        lb.stats('enable server p/b')
        self.assertEqual(self.tally(port, 10), {'b': 10})
        self.assertEqual(bs['c'].requests, 20)

    def test_two_backups_share_by_weight_while_the_primaries_are_down(self):
        """Backups c (weight 3) and d (weight 1): nothing while a primary
        is up, 15 and 5 of 20 while both are in maint, nothing again once
        b is back."""
        bs = {n: self.backend(harness.HttpBackend, n) for n in 'abcd'}
        lb, port = self.start([('a', bs['a']), ('b', bs['b']),
                               ('c', bs['c'], 'backup weight=3'),
                               ('d', bs['d'], 'weight=1 backup')])
        self.assertEqual(self.tally(port, 20), {'a': 10, 'b': 10})
        lb.stats('disable server p/a')
        lb.stats('disable server p/b')
        self.assertEqual(self.tally(port, 20), {'c': 15, 'd': 5})
        lb.stats('enable server p/b')
        self.assertEqual(self.tally(port, 20), {'b': 20})
        self.assertEqual((bs['c'].requests, bs['d'].requests), (15, 5))

    def takeover_by_scheduler(self, scheduler):
        """a and b up, backups c and d: 40 clients (each its own IP) never
        reach a backup; a and b stop: within the check bound every client
        is served by c or d, both take some, no request fails; a comes
        back: every client goes to a, none to a backup."""
        lb, port, bs = self.primaries_and_backup(scheduler, backups=('c', 'd'))
        clients = [harness.client_ip(i) for i in range(40)]
        first = {ip: ask(port, ip) for ip in clients}
        self.assertEqual(collections.Counter(first.values()).keys() - {'a', 'b'}, set(),
                         first)
        self.assertEqual(bs['c'].requests + bs['d'].requests, 0)

        bs['a'].stop()
        bs['b'].stop()
        self.until_served_by(port, {'c', 'd'}, TAKEOVER, source=clients[0])
        second = {ip: ask(port, ip) for ip in clients}
        got = collections.Counter(second.values())
        self.assertEqual(set(got), {'c', 'd'}, got)
        if scheduler == 'roundrobin':
            self.assertEqual(got, {'c': 20, 'd': 20})
        elif scheduler == 'leastconn':
            # ties go in turn; a connection still closing breaks a tie
            self.assertTrue(min(got.values()) >= 12, got)
        else:
            # a client stays on its backup
            self.assertEqual({ip: ask(port, ip) for ip in clients[:10]},
                             {ip: second[ip] for ip in clients[:10]})

        self.bring_back(bs, 'a')
        self.until_served_by(port, {'a'}, TAKEOVER, source=clients[0])
        third = {ip: ask(port, ip) for ip in clients}
        self.assertEqual(collections.Counter(third.values()), {'a': 40})
        return lb, port, bs, clients, first

    def test_roundrobin_takeover_and_back(self):
        self.takeover_by_scheduler('roundrobin')

    def test_leastconn_takeover_and_back(self):
        self.takeover_by_scheduler('leastconn')

    def test_source_clients_use_a_backup_only_while_no_primary_is_up(self):
        """scheduler = source: as above, and once b is back too every
        client is on the primary it had before the outage (Maglev keeps
        the mapping)."""
        lb, port, bs, clients, first = self.takeover_by_scheduler('source')
        self.bring_back(bs, 'b')
        self.wait_state(lb, 'b', 'up', TAKEOVER)
        self.assertEqual({ip: ask(port, ip) for ip in clients}, first)

    def test_persistence_does_not_keep_a_client_on_a_backup(self):
        """persist = source: a client stuck to c during the outage goes
        back to a primary as soon as one is up."""
        lb, port, bs = self.primaries_and_backup(persist='source', health='none')
        ip = harness.client_ip(3)
        lb.stats('disable server p/a')
        lb.stats('disable server p/b')
        self.assertEqual(self.tally(port, 3, [ip]), {'c': 3})
        lb.stats('enable server p/b')
        self.assertEqual(self.tally(port, 3, [ip]), {'b': 3})

    def test_full_primaries_queue_rather_than_spill_to_the_backup(self):
        """a (maxconn=1) holds one connection: a second one waits in the
        queue instead of going to backup c, and is served by a once the
        first ends."""
        a = self.backend(PeerEchoBackend, 'a')
        c = self.backend(PeerEchoBackend, 'c')
        lb, port = self.start([('a', a, 'maxconn=1'), ('c', c, 'backup')],
                              mode='tcp', health='none', queue_timeout='5s')
        first = self.connect(port)
        first.sendall(b'1')
        self.assertEqual(harness.recv_exact(first, 1), b'1')
        second = self.connect(port)
        second.sendall(b'2')
        # accepted and dispatched (tcplb picks at accept): it waits
        self.assertTrue(harness.wait_until(
            lambda: harness.find_listener(lb.stats_json(), 'web')['active'] == 2, WAIT))
        servers = harness.json_servers(lb.stats_json())
        self.assertEqual((servers['a']['active'], servers['c']['active'],
                          servers['c']['total']), (1, 0, 0), servers)
        self.assertEqual(c.connections, 0)
        first.close()
        self.assertEqual(harness.recv_exact(second, 1), b'2')
        second.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(second), b'')
        self.assertEqual((a.connections, c.connections), (2, 0))

    def test_add_server_backup_on_the_stats_socket(self):
        """`add server p/d ADDR backup`: listed with backup 1, no traffic
        while a primary is up, its share with c once a and b are in maint."""
        bs = {n: self.backend(harness.HttpBackend, n) for n in 'abcd'}
        lb, port = self.start([('a', bs['a']), ('b', bs['b']),
                               ('c', bs['c'], 'backup')], health='none')
        self.assertEqual(lb.stats('add server p/d %s backup' % bs['d'].addr),
                         'p/d up\n\n')
        self.assertEqual(harness.json_servers(lb.stats_json())['d']['backup'], 1)
        self.assertEqual(csv_rows(lb)[('p', 'd')]['backup'], '1')
        self.assertEqual(self.tally(port, 20), {'a': 10, 'b': 10})
        lb.stats('disable server p/a')
        lb.stats('disable server p/b')
        self.assertEqual(self.tally(port, 20), {'c': 10, 'd': 10})
        # a primary added while the backups serve takes over at once
        e = self.backend(harness.HttpBackend, 'e')
        self.assertEqual(lb.stats('add server p/e %s' % e.addr), 'p/e up\n\n')
        self.assertEqual(self.tally(port, 10), {'e': 10})
        self.assertEqual(bs['d'].requests, 10)

    def test_backups_still_serve_after_a_reload(self):
        """A reload keeps a and b in maint and c serving; a reload that
        drops the `backup` flag makes c a primary next to them."""
        bs = {n: self.backend(harness.HttpBackend, n) for n in 'abc'}
        lb, port = self.start([('a', bs['a']), ('b', bs['b']),
                               ('c', bs['c'], 'backup')], health='none')
        lb.stats('disable server p/a')
        lb.stats('disable server p/b')
        self.assertEqual(self.tally(port, 6), {'c': 6})
        self.reload(lb, self.cfg.text())
        self.assertEqual(self.tally(port, 6), {'c': 6})
        lb.stats('enable server p/a')
        self.assertEqual(self.tally(port, 6), {'a': 6})
        self.reload(lb, self.cfg.text().replace(' backup', ''))
        self.assertEqual(harness.json_servers(lb.stats_json())['c']['backup'], 0)
        self.assertEqual(self.tally(port, 6), {'a': 3, 'c': 3})

    def test_backup_is_a_flag_without_a_value(self):
        self.refused('server = c 127.0.0.1:9 backup=1',
                     want=r"server c: unknown option 'backup' \(known: .*backup")


# ---------------------------------------------------------------- check_port

class CheckPortTest(OptionsTestCase):

    def test_tcp_check_goes_to_the_check_port_only(self):
        """check_port = a closed port: a is down although its traffic port
        answers (503 for clients), the event says why, and no check ever
        connected to the traffic port; a listener on the check port brings
        it up and the traffic flows."""
        web = self.backend(harness.HttpBackend, 'a')
        check_port = harness.dead_port()
        lb, port = self.start([('a', web, 'check_port=%d' % check_port)], **CHECKS)
        self.wait_state(lb, 'a', 'down')
        self.wait_event(lb, r'^%s p/a up->down connect: Connection refused' % TS)
        r = harness.http_request(port, timeout=5)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(web.connections, 0, 'a check reached the traffic port')

        checker = self.backend(AcceptBackend, 'check', port=check_port)
        self.wait_state(lb, 'a', 'up', TAKEOVER)
        self.wait_event(lb, r'^%s p/a down->up connect ok' % TS)
        harness.wait_until(lambda: checker.connections >= 3, WAIT)
        self.assertGreaterEqual(checker.connections, 3)
        self.assertEqual(web.connections, 0, 'a check reached the traffic port')
        self.assertEqual(self.tally(port, 5), {'a': 5})
        self.assertEqual(web.connections, 5)

    def test_http_check_get_arrives_on_the_check_port(self):
        """health = http with check_port: the GET /health arrives on the
        check port's server, the clients' requests on the traffic port
        only; a 503 on the check port takes a down while its traffic port
        is fine."""
        web = self.backend(PeerHttpBackend, 'a')
        status = self.backend(harness.SwitchableHttpBackend, 'status')
        lb, port = self.start([('a', web, 'check_port=%d' % status.port)],
                              **dict(CHECKS, health='http', health_path='/health'))
        self.assertTrue(harness.wait_until(lambda: len(status.checks) >= 3, WAIT),
                        status.checks)
        head = status.checks[0][1]
        self.assertTrue(head.startswith('GET /health HTTP/1.1\r\n'), head)
        self.assertEqual(self.tally(port, 5), {'a': 5})
        self.assertEqual(web.snapshot(), [('127.0.0.1', '/')] * 5)
        self.assertEqual(status.requests, 0)
        status.set_health(503)
        self.wait_state(lb, 'a', 'down', TAKEOVER)
        self.wait_event(lb, r'^%s p/a up->down HTTP status 503' % TS)
        self.assertEqual(harness.http_request(port, timeout=5).status, 503)
        self.assertEqual(len(web.snapshot()), 5)

    def test_check_port_range(self):
        for bad in ('0', '65536', 'x'):
            with self.subTest(check_port=bad):
                self.refused('server = a 127.0.0.1:9 check_port=%s' % bad,
                             want=r"server a: check_port must be 1-65535, got '%s'" % bad)


# ---------------------------------------------------------------- source

class SourceTest(OptionsTestCase):

    def test_traffic_and_checks_leave_from_the_source_address(self):
        """Pool p (health http) has a with source=127.0.0.7, pool q (health
        tcp) has b with source=127.0.0.8 and n without a source: each
        backend sees its checks and its traffic come from its own address."""
        a = self.backend(PeerHttpBackend, 'a')
        b = self.backend(PeerHttpBackend, 'b')
        n = self.backend(PeerHttpBackend, 'n')
        cfg = self.config()
        port_p = cfg.listener('web', pool='p', mode='http')
        port_q = cfg.listener('raw', pool='q', mode='http')
        cfg.pool('p', [('a', a, 'source=127.0.0.7')],
                 **dict(CHECKS, health='http', health_path='/health'))
        cfg.pool('q', [('b', b, 'source=127.0.0.8'), ('n', n)], **CHECKS)
        lb = self.tcplb(cfg)
        for pool, srv in (('p', 'a'), ('q', 'b'), ('q', 'n')):
            self.wait_state(lb, srv, 'up', pool=pool)
        self.assertTrue(harness.wait_until(
            lambda: len(a.snapshot()) >= 2 and len(b.snapshot()) >= 2, WAIT))
        self.assertEqual(self.tally(port_p, 4), {'a': 4})
        self.assertEqual(self.tally(port_q, 4), {'b': 2, 'n': 2})
        seen_a = a.snapshot()
        self.assertEqual({ip for ip, _ in seen_a}, {'127.0.0.7'}, seen_a)
        self.assertEqual(collections.Counter(p for _, p in seen_a)['/'], 4, seen_a)
        self.assertIn('/health', {p for _, p in seen_a})
        seen_b = b.snapshot()
        self.assertEqual({ip for ip, _ in seen_b}, {'127.0.0.8'}, seen_b)
        self.assertIn(None, {p for _, p in seen_b})       # a tcp check
        self.assertEqual(collections.Counter(p for _, p in seen_b)['/'], 2, seen_b)
        self.assertEqual({ip for ip, _ in n.snapshot()}, {'127.0.0.1'})

    def test_a_source_that_is_not_ours_or_of_the_wrong_family_is_refused(self):
        ip = harness.foreign_ipv4()
        if ip is None:
            self.skipTest('every documentation address binds here (ip_nonlocal_bind?)')
        self.refused('server = a 127.0.0.1:9 source=%s' % ip,
                     want=r'server a: source=%s: cannot bind it: Cannot assign '
                          r'requested address' % re.escape(ip))
        self.refused('server = a 127.0.0.1:9 source=::1',
                     want=r"server a: source is IPv6 but the server's address is IPv4")
        self.refused('server = a [::1]:9 source=127.0.0.1',
                     want=r"server a: source is IPv4 but the server's address is IPv6")
        self.refused('server = a 127.0.0.1:9 source=localhost',
                     want=r"server a: source=localhost: 'localhost' is not an IPv4 "
                          r"or IPv6 address")
        path = self.write_config(
            '[global]\nworkers = 1\nlog = off\n[listener web]\nbind = 127.0.0.1:%d\n'
            'pool = p\n[pool p]\nserver = a 127.0.0.1:9 source=127.0.0.9\n'
            % harness.free_port())
        self.assertEqual(harness.check_config(path), (0, ''))

    def test_add_server_with_a_source(self):
        """`add server ... source=127.0.0.9`: its traffic comes from there;
        a foreign source is an error line and adds nothing."""
        a = self.backend(PeerHttpBackend, 'a')
        d = self.backend(PeerHttpBackend, 'd')
        lb, port = self.start([('a', a)], health='none')
        self.assertEqual(lb.stats('add server p/d %s source=127.0.0.9' % d.addr),
                         'p/d up\n\n')
        lb.stats('disable server p/a')
        self.assertEqual(self.tally(port, 3), {'d': 3})
        self.assertEqual(d.snapshot(), [('127.0.0.9', '/')] * 3)
        ip = harness.foreign_ipv4()
        if ip is not None:
            answer = lb.stats('add server p/e %s source=%s' % (d.addr, ip))
            self.assertRegex(answer, r'^error: server e: source=%s: cannot bind it'
                             % re.escape(ip))
            self.assertNotIn(('p', 'e'), csv_rows(lb))


# ---------------------------------------------------------------- keepalive

def ss_timer(local_port, peer_port):
    """The timer:(...) text ss shows for the established socket from
    127.0.0.1:local_port to :peer_port ('' when it has none); None when ss
    does not list that socket."""
    out = subprocess.run(
        ['ss', '-tnoH', 'state', 'established',
         '( sport = :%d and dport = :%d )' % (local_port, peer_port)],
        capture_output=True, text=True, timeout=10).stdout
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        return None
    m = re.search(r'timer:\(([^)]*)\)', lines[0])
    return m.group(1) if m else ''


def ss_seconds(text):
    """Seconds in one of ss's timer values: '696ms', '6.696ms' (iproute2
    6.x writes seconds.milliseconds with an `ms` unit), '6sec',
    '1min9sec'."""
    m = re.fullmatch(r'(?:(\d+)min)?(?:(\d+)(?:\.(\d+))?(ms|sec))?', text)
    if not m or not text:
        raise ValueError('unknown ss timer value %r' % text)
    mins, whole, frac, unit = m.groups()
    total = 60 * int(mins or 0)
    if whole is not None:
        if unit == 'sec' or frac is not None:
            total += int(whole) + (int(frac) / 10 ** len(frac) if frac else 0)
        else:
            total += int(whole) / 1000
    return total


_libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD = 438


def peer_socket_options(pid, local, peer):
    """{name: value} of SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and
    TCP_KEEPCNT on process pid's TCP socket local -> peer ((ip, port)
    pairs), read through a copy of its descriptor (pidfd_getfd); None
    when the kernel does not allow it."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
    try:
        for name in os.listdir('/proc/%d/fd' % pid):
            try:
                if not os.readlink('/proc/%d/fd/%s' % (pid, name)).startswith('socket:'):
                    continue
            except OSError:
                continue
            fd = _libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd == -1:
                return None
            s = socket.socket(fileno=fd)
            try:
                if s.family != socket.AF_INET or s.type != socket.SOCK_STREAM:
                    continue
                try:
                    if s.getsockname() != local or s.getpeername() != peer:
                        continue
                except OSError:
                    continue
                return {
                    'keepalive': s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    'idle': s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    'interval': s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    'count': s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                }
            finally:
                s.close()       # our copy only
        raise AssertionError('no socket %s -> %s in pid %d' % (local, peer, pid))
    finally:
        os.close(pidfd)


@unittest.skipUnless(shutil.which('ss'), 'ss (iproute2) is not installed: '
                     'the keepalive timers cannot be read')
class KeepaliveTest(OptionsTestCase):

    def one_connection(self, **pool_keys):
        """An echoed connection through tcplb (mode tcp); returns (lb, the
        client-side socket pair of tcplb, the server-side pair), each as
        ((local ip, port), (peer ip, port))."""
        echo = self.echo = self.backend(PeerEchoBackend, 'echo')
        lb, port = self.start([('e', echo)], mode='tcp', health='none', **pool_keys)
        self.port = port
        s = self.connect(port)
        s.sendall(b'ping')
        self.assertEqual(harness.recv_exact(s, 4), b'ping')
        self.assertTrue(harness.wait_until(lambda: echo.peers, WAIT))
        client_side = (('127.0.0.1', port), s.getsockname())
        server_side = (echo.peers[0], ('127.0.0.1', echo.port))
        return lb, client_side, server_side

    def test_both_sockets_of_a_connection_probe_with_the_pool_values(self):
        """tcp_keepalive = on, idle 7s, interval 3s, count 4: ss shows a
        keepalive timer on tcplb's socket to the client and on its socket
        to the server, first due within 7 s; getsockopt on tcplb's own
        descriptors reads exactly 1, 7, 3, 4."""
        lb, client_side, server_side = self.one_connection(
            tcp_keepalive='on', tcp_keepalive_idle='7s', tcp_keepalive_interval='3s',
            tcp_keepalive_count=4)
        for label, (local, peer) in (('client side', client_side),
                                     ('server side', server_side)):
            with self.subTest(socket=label):
                timer = ss_timer(local[1], peer[1])
                self.assertIsNotNone(timer, 'ss does not list %s -> %s' % (local, peer))
                m = re.match(r'keepalive,([^,]+),', timer)
                self.assertIsNotNone(m, 'no keepalive timer on tcplb\'s %s: %r'
                                     % (label, timer))
                due = ss_seconds(m.group(1))
                self.assertTrue(5.0 <= due <= 7.0, 'first probe due in %.3fs, '
                                'idle is 7s (%r)' % (due, timer))
                opts = peer_socket_options(lb.pid, local, peer)
                if opts is None:
                    continue    # the timer above is all we can read
                self.assertEqual(opts, {'keepalive': 1, 'idle': 7, 'interval': 3,
                                        'count': 4})

    def test_without_tcp_keepalive_no_socket_probes(self):
        lb, client_side, server_side = self.one_connection()
        for label, (local, peer) in (('client side', client_side),
                                     ('server side', server_side)):
            with self.subTest(socket=label):
                timer = ss_timer(local[1], peer[1])
                self.assertIsNotNone(timer, 'ss does not list %s -> %s' % (local, peer))
                self.assertNotIn('keepalive', timer)
                opts = peer_socket_options(lb.pid, local, peer)
                if opts is not None:
                    self.assertEqual(opts['keepalive'], 0)

    def test_a_reload_turns_it_on_for_new_connections(self):
        """A connection opened before the reload keeps no probes; one
        opened after it has them on both sockets."""
        lb, old_client, old_server = self.one_connection()
        self.reload(lb, self.cfg.text().replace(
            'health = none', 'health = none\ntcp_keepalive = on\ntcp_keepalive_idle = 9s'))
        s = self.connect(self.port)
        s.sendall(b'pong')
        self.assertEqual(harness.recv_exact(s, 4), b'pong')
        self.assertTrue(harness.wait_until(lambda: len(self.echo.peers) == 2, WAIT))
        new_client = (('127.0.0.1', self.port), s.getsockname())
        new_server = (self.echo.peers[1], ('127.0.0.1', self.echo.port))
        for label, (local, peer), want in (('old client side', old_client, False),
                                           ('old server side', old_server, False),
                                           ('new client side', new_client, True),
                                           ('new server side', new_server, True)):
            with self.subTest(socket=label):
                timer = ss_timer(local[1], peer[1])
                self.assertIsNotNone(timer, 'ss does not list %s -> %s' % (local, peer))
                self.assertEqual(timer.startswith('keepalive,'), want, timer)

    def test_bad_keepalive_values_are_refused(self):
        cases = [
            ('tcp_keepalive_idle = 500ms',
             r"tcp_keepalive_idle: must be whole seconds from 1s to 32767s, got '500ms'"),
            ('tcp_keepalive_idle = 40000s',
             r"tcp_keepalive_idle: must be whole seconds from 1s to 32767s, got '40000s'"),
            ('tcp_keepalive_interval = 1.5s',
             r"tcp_keepalive_interval: must be whole seconds from 1s to 32767s, "
             r"got '1.5s'"),
            ('tcp_keepalive_interval = 0s', r'tcp_keepalive_interval: '),
            ('tcp_keepalive_count = 0',
             r"tcp_keepalive_count: '0' is not a whole number in 1-127"),
            ('tcp_keepalive_count = 128',
             r"tcp_keepalive_count: '128' is not a whole number in 1-127"),
            ('tcp_keepalive = yes', r"tcp_keepalive: expected on or off, got 'yes'"),
        ]
        for line, want in cases:
            with self.subTest(line=line):
                self.refused('server = a 127.0.0.1:9', line, want=want)


if __name__ == '__main__':
    unittest.main()
