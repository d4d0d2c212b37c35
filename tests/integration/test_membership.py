"""Membership at run time and several instances (../shared/CONTRACT.md
sections 11 and 12; docs/reference.md: Stats socket `add server`, `del
server`, `drain self`, `enable self`; Metrics and the page `GET /health`;
Membership and several instances; docs/configuration.md: `server_slots`,
`bind ... freebind`).

Every case goes through real sockets: servers added and deleted on the
stats socket are seen in every view (show stat, show stat json, /metrics,
/stats.json) and by the traffic; /health is read over HTTP; a listener with
freebind is found in the kernel's socket table; two instances compare their
`mapping` digests and `which` answers. States and events are polled with
deadlines, never slept for; every load loop is bounded in count and time."""

import collections
import http.client
import json
import os
import signal
import socket
import time
import unittest

import harness

WAIT = 3.0              # seconds a state change may take before a test fails
# fast tcp health checks: an added server is down until its first one passes
CHECKS = dict(health='tcp', health_interval='100ms', health_timeout='100ms',
              rise=1, fall=2)
TS = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'


# ---------------------------------------------------------------- helpers

def http_get(port, path, timeout=5.0):
    """(status, body text) of GET path on 127.0.0.1:port; 5xx included."""
    c = http.client.HTTPConnection(harness.HOST, port, timeout=timeout)
    try:
        c.request('GET', path)
        r = c.getresponse()
        return r.status, r.read().decode('utf-8', 'replace')
    finally:
        c.close()


answer_lines = harness.answer_lines



csv_rows = harness.csv_rows


def mapping(js, pool):
    for p in js['pools']:
        if p['name'] == pool:
            return p['mapping']
    raise AssertionError('no pool %s in %s' % (pool, json.dumps(js)[:2000]))


class RecordingBackend(harness.Backend):
    """Reads each connection to EOF, keeps what it got in `received`,
    answers `ok` and closes: shows the bytes tcplb sent first (a PROXY
    header with send-proxy / send-proxy-v2)."""

    def __init__(self, name='rec'):
        self.received = []
        super().__init__(name)

    def serve(self, conn):
        data = harness.recv_until_eof(conn, limit=1 << 20)
        with self.lock:
            self.received.append(data)
        conn.sendall(b'ok')
        conn.shutdown(socket.SHUT_WR)


class AgentBackend(harness.Backend):
    """An agent check server: each connection gets `line` and a close."""

    def __init__(self, line, name='agent'):
        self.line = line
        super().__init__(name)

    def serve(self, conn):
        conn.sendall(self.line)
        conn.shutdown(socket.SHUT_WR)


def kernel_listens(ip, port):
    """True when /proc/net/tcp has a LISTEN socket on ip:port."""
    want = '%08X:%04X' % (int.from_bytes(socket.inet_aton(ip), 'little'), port)
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[1] == want and fields[3] == '0A':
                return True
    return False


class MembershipTestCase(harness.TcplbTestCase):

    def start(self, servers, mode='http', workers=2, stats_http=True, lb_name=None,
              global_keys=None, **pool_keys):
        """tcplb with listener `web` over pool `p` (round robin, health none
        unless given); stats_http on a free port (self.http_port)."""
        keys = dict(global_keys or {})
        self.http_port = None
        if stats_http:
            self.http_port = harness.free_port()
            keys['stats_http'] = '%s:%d' % (harness.HOST, self.http_port)
        cfg = self.config(workers=workers, **keys)
        port = cfg.listener('web', pool='p', mode=mode)
        cfg.pool('p', servers, **pool_keys)
        lb = self.tcplb(cfg)
        if stats_http:
            harness.wait_until(lambda: harness.is_listening(self.http_port), 3)
        harness.wait_started(lb)
        self.cfg = cfg
        return lb, port

    def backends_of(self, port, n):
        got = collections.Counter()
        for _ in range(n):
            r = harness.http_request(port, timeout=5)
            self.assertEqual(r.status, 200, r)
            got[r.headers.get('x-backend')] += 1
        return dict(got)

    event_wait = WAIT

    def wait_state(self, lb, server, state, timeout=WAIT, pool='p'):
        if harness.wait_server_state(lb, pool, server, state, timeout) is None:
            self.fail('%s/%s not %s within %.1fs: %s'
                      % (pool, server, state, timeout,
                         harness.json_servers(lb.stats_json(), pool).get(server)))

    def views(self, lb, server, pool='p'):
        """In which views POOL/server is listed: csv, json, metrics,
        stats.json (the page's data)."""
        found = set()
        if (pool, server) in csv_rows(lb):
            found.add('csv')
        if server in harness.json_servers(lb.stats_json(), pool):
            found.add('json')
        if self.http_port:
            status, text = http_get(self.http_port, '/metrics')
            self.assertEqual(status, 200)
            if ('tcplb_server_up{pool="%s",server="%s"}' % (pool, server)) in text:
                found.add('metrics')
            status, text = http_get(self.http_port, '/stats.json')
            self.assertEqual(status, 200)
            if server in harness.json_servers(json.loads(text), pool):
                found.add('stats.json')
        return found

ALL_VIEWS = {'csv', 'json', 'metrics', 'stats.json'}


# ---------------------------------------------------------------- add server

class AddServerTest(MembershipTestCase):

    def test_added_server_is_down_until_its_first_check_passes(self):
        """With health checks, `add server` answers `p/b2 down`, the server
        is in every view at once, the event says it was added from the stats
        socket, and its first passing check brings it up (`first check`);
        from then on round robin splits exactly."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        lb, port = self.start([('b1', b1)], health='tcp', health_interval='300ms',
                              health_timeout='200ms', rise=2, fall=2)
        self.wait_state(lb, 'b1', 'up')
        self.assertEqual(lb.stats('add server p/b2 %s' % b2.addr), 'p/b2 down\n\n')
        self.assertEqual(self.views(lb, 'b2'), ALL_VIEWS)
        row = csv_rows(lb)[('p', 'b2')]
        self.assertEqual((row['addr'], row['weight'], row['total']), (b2.addr, '1', '0'))
        self.wait_event(lb, r'^%s p/b2 none->down added from the stats socket$' % TS, 1)
        # no traffic before its check passed (the check itself is no request)
        if harness.server_state(lb, 'p', 'b2') == 'down':
            self.assertEqual(self.backends_of(port, 2), {'b1': 2})
        # a first passing check is enough, whatever `rise`
        self.wait_event(lb, r'^%s p/b2 down->up .*first check' % TS, 1.5)
        self.assertEqual(harness.server_state(lb, 'p', 'b2'), 'up')
        self.assertEqual(self.backends_of(port, 10), {'b1': 5, 'b2': 5})
        js = self.settled_stats(lb)
        self.assertEqual(harness.json_servers(js, 'p')['b2']['total'], 5)
        self.assertEqual(b2.requests, 5)

    def test_added_server_with_health_none_is_up_at_once(self):
        """`health = none`: the added server answers `up`, the event is
        `none->up`, every view has it as up with its weight, and (under
        leastconn) the very next connections go to it. A name may carry
        `:`, `[` and `]`."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        b3 = self.backend(harness.HttpBackend, 'b3')
        lb, port = self.start([('b1', b1)], scheduler='leastconn')
        self.assertEqual(lb.stats('add server p/b2 %s weight=3' % b2.addr),
                         'p/b2 up\n\n')
        self.assertEqual(self.views(lb, 'b2'), ALL_VIEWS)
        self.wait_event(lb, r'^%s p/b2 none->up added from the stats socket$' % TS, 1)
        row = csv_rows(lb)[('p', 'b2')]
        self.assertEqual((row['state'], row['weight']), ('up', '3'))
        status, text = http_get(self.http_port, '/metrics')
        self.assertIn('tcplb_server_up{pool="p",server="b2"} 1', text)
        # sequential connections: leastconn's ties go in turn
        self.assertEqual(set(self.backends_of(port, 4)), {'b1', 'b2'})
        name = '[%s]:%d' % (harness.HOST, b3.port)
        self.assertEqual(lb.stats('add server p/%s %s' % (name, b3.addr)),
                         'p/%s up\n\n' % name)
        self.assertEqual(self.views(lb, name), ALL_VIEWS)

    def test_added_server_up_at_once_takes_its_round_robin_share(self):
        """`health = none` under round robin: the added server should take
        its weight's share of the very next connections (b1 2, b2 6 of 8).
        Fails: membership_fill() tells the scheduler of the new server
        (pool_server_published) before pool->nservers covers it, so round
        robin (and source's table) is rebuilt over the old servers only and
        the added one gets nothing until its next state change (disable +
        enable fixes it); leastconn, which reads the servers live, is not
        affected."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        lb, port = self.start([('b1', b1)])
        self.assertEqual(lb.stats('add server p/b2 %s weight=3' % b2.addr),
                         'p/b2 up\n\n')
        self.assertEqual(self.backends_of(port, 8), {'b1': 2, 'b2': 6})

    def test_server_line_options_of_an_added_server(self):
        """maxconn=, send-proxy, send-proxy-v2 and agent_port= act on an
        added server as on a server line."""
        rec1 = self.backend(RecordingBackend, 'rec1')
        rec2 = self.backend(RecordingBackend, 'rec2')
        echo = self.backend(harness.EchoBackend, 'echo')
        agent = self.backend(AgentBackend, b'50%\n')
        # leastconn: reads the servers live (round robin would not see an
        # added server that is up at once, see the expected failure above)
        lb, port = self.start([], mode='tcp', queue_timeout='300ms', scheduler='leastconn',
                              agent_interval='100ms', health_timeout='200ms')
        # send-proxy: a PROXY v1 line before the client's bytes
        self.assertEqual(lb.stats('add server p/v1 %s send-proxy' % rec1.addr),
                         'p/v1 up\n\n')
        s = self.connect(port)
        s.sendall(b'hello')
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), b'ok')
        harness.wait_until(lambda: rec1.received, 2)
        self.assertRegex(rec1.received[0],
                         rb'^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ %d\r\nhello$' % port)
        # send-proxy-v2: the binary signature, then the client's bytes
        lb.stats('disable server p/v1')
        self.assertEqual(lb.stats('add server p/v2 %s send-proxy-v2' % rec2.addr),
                         'p/v2 up\n\n')
        s = self.connect(port)
        s.sendall(b'hello')
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), b'ok')
        harness.wait_until(lambda: rec2.received, 2)
        self.assertTrue(rec2.received[0].startswith(b'\r\n\r\n\x00\r\nQUIT\n\x21\x11'),
                        rec2.received[0][:32])
        self.assertTrue(rec2.received[0].endswith(b'hello'))
        self.assertEqual(rec1.received[1:], [])
        # maxconn=1: a second concurrent connection waits in the queue
        lb.stats('disable server p/v2')
        self.assertEqual(lb.stats('add server p/one %s maxconn=1' % echo.addr),
                         'p/one up\n\n')
        first = self.connect(port)
        first.sendall(b'a')
        self.assertEqual(harness.recv_exact(first, 1), b'a')
        second = self.connect(port)
        t0 = time.monotonic()
        self.assertEqual(harness.recv_until_eof(second), b'',
                         'maxconn=1 let a second connection through')
        self.assertGreaterEqual(time.monotonic() - t0, 0.25, 'not queued')
        self.assertEqual(echo.connections, 1)
        first.close()
        # agent_port=: the agent's `50%` halves the weight in force
        self.assertEqual(lb.stats('add server p/ag %s weight=2 agent_port=%d'
                                  % (echo.addr, agent.port)), 'p/ag up\n\n')
        ok = harness.wait_until(
            lambda: harness.json_servers(lb.stats_json(), 'p')['ag']['eweight'] == 1.0, WAIT)
        self.assertTrue(ok, harness.json_servers(lb.stats_json(), 'p')['ag'])
        self.assertGreaterEqual(agent.connections, 1)

    def test_refusals_change_nothing(self):
        """Duplicate name (of a file server or an added one), a host name,
        a bad option or weight, a bad server name, an unknown pool and a
        pool out of room (`server_slots = 1`) are each one `error:` line;
        the pool is as before."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        lb, port = self.start([('b1', b1)], server_slots=1, **CHECKS)
        self.wait_state(lb, 'b1', 'up')
        before = csv_rows(lb)
        cases = [
            ('add server p/b1 %s' % b2.addr, r"pool 'p' has a server 'b1' already"),
            ('add server p/b2 localhost:%d' % b2.port, r"'localhost' is not an IP address"),
            ('add server p/b2 %s color=red' % b2.addr, r"unknown option 'color'"),
            ('add server p/b2 %s weight=999' % b2.addr, r'weight must be 0-256'),
            ('add server p/b2 %s maxconn=x' % b2.addr, r'maxconn'),
            ('add server p/b!d %s' % b2.addr, r'not a valid server name'),
            ('add server nopool/b2 %s' % b2.addr, r"no pool 'nopool'"),
            ('add server p/b2', r'usage: add server'),
        ]
        for cmd, want in cases:
            with self.subTest(cmd=cmd):
                answer = lb.stats(cmd)
                self.assertRegex(answer, r'^error: .*%s.*\n\n$' % want)
        self.assertEqual(csv_rows(lb), before)
        # the one slot: the first addition fits, the next has no room
        self.assertEqual(lb.stats('add server p/b2 %s' % b2.addr), 'p/b2 down\n\n')
        self.assertEqual(lb.stats('add server p/b2 %s' % b2.addr),
                         "error: pool 'p' has a server 'b2' already\n\n")
        self.assertEqual(lb.stats('add server p/b3 %s' % b2.addr),
                         "error: pool 'p' has no room for another server "
                         "(server_slots = 1)\n\n")
        self.assertEqual(sorted(s for _, s in csv_rows(lb)), ['b1', 'b2'])
        self.wait_state(lb, 'b2', 'up')
        self.assertEqual(self.backends_of(port, 4), {'b1': 2, 'b2': 2})
        self.assertTrue(lb.running())

    def test_a_deleted_servers_slot_goes_back_to_its_name_at_once(self):
        """configuration.md, server_slots: a removed server's slot is taken
        again at once by a server of the same name, by another one only a
        minute after the removal; so with server_slots = 1, b3 is refused
        right after b2 was deleted, and b2 itself comes back."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        lb, port = self.start([('b1', b1)], server_slots=1, stats_http=False)
        self.assertEqual(lb.stats('add server p/b2 %s' % b2.addr), 'p/b2 up\n\n')
        lb.stats('disable server p/b2')
        self.assertEqual(lb.stats('del server p/b2'), 'p/b2 deleted\n\n')
        self.assertEqual(lb.stats('add server p/b3 %s' % b2.addr),
                         "error: pool 'p' has no room for another server "
                         "(server_slots = 1)\n\n")
        self.assertEqual(lb.stats('add server p/b2 %s' % b2.addr), 'p/b2 up\n\n')
        self.assertEqual(sorted(s for _, s in csv_rows(lb)), ['b1', 'b2'])

    def test_added_server_ramps_under_slowstart(self):
        """slowstart = 1s: an added server's weight in force starts near
        1/20 of its weight and grows to all of it within the slow start."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        lb, port = self.start([('b1', b1, 'weight=20')], slowstart='1s')
        t0 = time.monotonic()
        self.assertEqual(lb.stats('add server p/b2 %s weight=20' % b2.addr),
                         'p/b2 up\n\n')
        samples = []
        while time.monotonic() < t0 + 3:
            e = harness.json_servers(lb.stats_json(), 'p')['b2']['eweight']
            samples.append((round(time.monotonic() - t0, 3), e))
            if e == 20.0:
                break
            time.sleep(0.03)
        values = [e for _, e in samples]
        self.assertLessEqual(values[0], 20 * (0.05 + samples[0][0]) + 1, samples)
        self.assertEqual(values, sorted(values), 'eweight fell: %s' % samples)
        self.assertEqual(values[-1], 20.0, samples)
        self.assertGreaterEqual(len(set(values)), 4, samples)
        self.assertGreaterEqual(samples[-1][0], 0.8, 'ramped too fast: %s' % samples)
        self.assertEqual(harness.json_servers(lb.stats_json(), 'p')['b1']['eweight'], 20.0)

    def test_server_added_under_load_takes_traffic_without_a_client_error(self):
        """While a steady loop of requests runs, a server added with health
        checks goes up and takes its share; no request fails; afterwards
        round robin is exact again over the three servers."""
        bs = [self.backend(harness.HttpBackend, 'b%d' % i) for i in (1, 2, 3)]
        lb, port = self.start([('b1', bs[0]), ('b2', bs[1])], health='tcp',
                              health_interval='100ms', health_timeout='100ms',
                              rise=1, fall=2)
        self.wait_state(lb, 'b2', 'up')
        loop = harness.RequestLoop(port, max_requests=1500, max_seconds=8).start()
        try:
            self.assertTrue(loop.wait_for(lambda lp: lp.done >= 50, 3), loop.got)
            self.assertEqual(lb.stats('add server p/b3 %s' % bs[2].addr), 'p/b3 down\n\n')
            self.wait_state(lb, 'b3', 'up')
            self.assertTrue(loop.wait_for(lambda lp: lp.count('b3') >= 50, 5),
                            'the added server took too little: %s' % loop.got)
        finally:
            loop.stop()
        self.assertEqual(loop.errors, [], 'client errors under load: %s' % loop.got)
        self.assertTrue(set(loop.got) <= {'b1', 'b2', 'b3'}, loop.got)
        self.assertEqual(self.backends_of(port, 30), {'b1': 10, 'b2': 10, 'b3': 10})

    def test_added_server_is_gone_after_a_reload(self):
        """The file is the source of truth: after a reload (same file) the
        added server is in no view and gets no traffic; the file's servers
        keep their counters."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        lb, port = self.start([('b1', b1)], **CHECKS)
        self.wait_state(lb, 'b1', 'up')
        lb.stats('add server p/b2 %s' % b2.addr)
        self.wait_state(lb, 'b2', 'up')
        self.assertEqual(self.backends_of(port, 4), {'b1': 2, 'b2': 2})
        self.settled_stats(lb)
        self.reload(lb, self.cfg.text())
        self.assertEqual(self.views(lb, 'b2'), set())
        self.assertEqual(self.backends_of(port, 3), {'b1': 3})
        js = self.settled_stats(lb)
        self.assertEqual(harness.json_servers(js, 'p')['b1']['total'], 5)
        self.assertEqual(b2.requests, 2)


# ---------------------------------------------------------------- del server

class DelServerTest(MembershipTestCase):

    def test_delete_needs_maint_then_the_server_is_gone_everywhere(self):
        """`del server` of an up server answers an error naming its state;
        after `disable server` it answers `p/b2 deleted`, the event is
        `maint->none deleted from the stats socket`, every view loses it and
        traffic goes to the others; the same name can be added again, fresh."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        b2 = self.backend(harness.HttpBackend, 'b2')
        b3 = self.backend(harness.HttpBackend, 'b3')
        lb, port = self.start([('b1', b1), ('b2', b2)])
        self.assertEqual(self.backends_of(port, 4), {'b1': 2, 'b2': 2})
        answer = lb.stats('del server p/b2')
        self.assertRegex(answer, r'^error: server p/b2 is up: disable it first')
        self.assertEqual(self.views(lb, 'b2'), ALL_VIEWS)
        lb.stats('drain server p/b2')
        self.assertRegex(lb.stats('del server p/b2'), r'^error: server p/b2 is drain')
        self.assertEqual(lb.stats('disable server p/b2'), 'p/b2 maint\n\n')
        self.settled_stats(lb)
        self.assertEqual(lb.stats('del server p/b2'), 'p/b2 deleted\n\n')
        self.wait_event(lb, r'^%s p/b2 maint->none deleted from the stats socket$' % TS, 1)
        self.assertEqual(self.views(lb, 'b2'), set())
        self.assertEqual(lb.stats('del server p/b2'),
                         "error: no server 'b2' in pool 'p'\n\n")
        self.assertEqual(lb.stats('disable server p/b2')[:6], 'error:')
        self.assertEqual(self.backends_of(port, 3), {'b1': 3})
        # the name again, at another address: a new server, counters at 0
        self.assertEqual(lb.stats('add server p/b2 %s' % b3.addr), 'p/b2 up\n\n')
        self.assertEqual(self.views(lb, 'b2'), ALL_VIEWS)
        row = csv_rows(lb)[('p', 'b2')]
        self.assertEqual((row['addr'], row['state'], row['total'], row['bytes_in']),
                         (b3.addr, 'up', '0', '0'))
        self.assertEqual(self.backends_of(port, 4), {'b1': 2, 'b3': 2})
        self.assertEqual(b2.requests, 2)

    def test_an_open_connection_blocks_deletion_until_it_closes(self):
        """A connection held to a server in maint keeps it: `del server`
        answers how many connections are open, the connection still relays,
        and once it closes the deletion succeeds."""
        e1 = self.backend(harness.EchoBackend, 'e1')
        e2 = self.backend(harness.EchoBackend, 'e2')
        lb, port = self.start([('e1', e1)], mode='tcp')
        self.assertEqual(lb.stats('add server p/e2 %s' % e2.addr), 'p/e2 up\n\n')
        lb.stats('disable server p/e1')
        held = self.connect(port)
        held.sendall(b'x')
        self.assertEqual(harness.recv_exact(held, 1), b'x')
        self.assertEqual(e2.connections, 1)
        lb.stats('enable server p/e1')
        self.assertEqual(lb.stats('disable server p/e2'), 'p/e2 maint\n\n')
        self.assertEqual(lb.stats('del server p/e2'),
                         'error: server p/e2 has 1 open connection: wait until they end\n\n')
        self.assertEqual(self.views(lb, 'e2'), ALL_VIEWS)
        # the held connection still gets its bytes, both ways
        held.sendall(b'still here')
        self.assertEqual(harness.recv_exact(held, 10), b'still here')
        self.assertRegex(lb.stats('del server p/e2'), r'^error: .*1 open connection')
        held.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(held), b'')
        held.close()
        ok = harness.wait_until(
            lambda: harness.json_servers(lb.stats_json(), 'p')['e2']['active'] == 0, WAIT)
        self.assertTrue(ok)
        self.assertEqual(lb.stats('del server p/e2'), 'p/e2 deleted\n\n')
        self.assertEqual(self.views(lb, 'e2'), set())
        self.assertEqual(e2.received, [(11, e2.received[0][1])])
        # new connections meanwhile went to e1 only
        s = self.connect(port)
        s.sendall(b'y')
        self.assertEqual(harness.recv_exact(s, 1), b'y')
        self.assertEqual(e2.connections, 1)


# ---------------------------------------------------------------- GET /health

class HealthEndpointTest(MembershipTestCase):

    def test_ok_then_draining_then_ok(self):
        """200 `ok`; after `drain self` 503 `draining` while traffic is still
        accepted and served; `enable self` brings back 200 `ok`."""
        b1 = self.backend(harness.HttpBackend, 'b1')
        lb, port = self.start([('b1', b1)])
        self.assertEqual(http_get(self.http_port, '/health'), (200, 'ok\n'))
        self.assertEqual(lb.stats('drain self'), 'self draining\n\n')
        self.assertEqual(http_get(self.http_port, '/health'), (503, 'draining\n'))
        self.assertEqual(self.backends_of(port, 3), {'b1': 3})
        self.assertEqual(http_get(self.http_port, '/health'), (503, 'draining\n'))
        self.assertEqual(lb.stats('enable self'), 'self enabled\n\n')
        self.assertEqual(http_get(self.http_port, '/health'), (200, 'ok\n'))

    def test_no_server_up_in_a_listeners_pool(self):
        """503 `no server up in pool P (listener L)` once every server of a
        listener's pool is down (health) or in maint; back to 200 when one
        is up again."""
        a = self.backend(harness.HttpBackend, 'a')
        q1 = self.backend(harness.SwitchableHttpBackend, 'q1')
        self.http_port = harness.free_port()
        cfg = self.config(stats_http='%s:%d' % (harness.HOST, self.http_port))
        port = cfg.listener('web', pool='p', mode='http')
        cfg.listener('api', pool='q', mode='http')
        cfg.pool('p', [('a', a)])
        cfg.pool('q', [('q1', q1), ('q2', '%s:%d' % (harness.HOST, harness.dead_port()))],
                 health='http', health_interval='100ms', health_timeout='100ms',
                 rise=1, fall=1)
        lb = self.tcplb(cfg)
        harness.wait_until(lambda: harness.is_listening(self.http_port), 3)
        self.wait_state(lb, 'q2', 'down', pool='q')
        self.wait_state(lb, 'q1', 'up', pool='q')
        self.assertEqual(http_get(self.http_port, '/health'), (200, 'ok\n'))
        q1.set_health(503)
        self.wait_state(lb, 'q1', 'down', pool='q')
        self.assertEqual(http_get(self.http_port, '/health'),
                         (503, 'no server up in pool q (listener api)\n'))
        q1.set_health(200)
        self.wait_state(lb, 'q1', 'up', pool='q')
        self.assertEqual(http_get(self.http_port, '/health'), (200, 'ok\n'))
        lb.stats('disable server p/a')
        self.assertEqual(http_get(self.http_port, '/health'),
                         (503, 'no server up in pool p (listener web)\n'))
        # draining self wins over a pool's state (first reason only)
        lb.stats('drain self')
        self.assertEqual(http_get(self.http_port, '/health'), (503, 'draining\n'))
        lb.stats('enable self; enable server p/a')
        self.assertEqual(http_get(self.http_port, '/health'), (200, 'ok\n'))
        self.assertEqual(self.backends_of(port, 2), {'a': 2})

    def test_stopping_while_a_connection_finishes(self):
        """After SIGTERM with a connection still open: /health answers 503
        `stopping`, the listener accepts no new connection, the open one is
        still served to its end, then tcplb exits 0."""
        e1 = self.backend(harness.EchoBackend, 'e1')
        self.http_port = harness.free_port()
        cfg = self.config(shutdown_timeout='10s',
                          stats_http='%s:%d' % (harness.HOST, self.http_port))
        port = cfg.listener('web', pool='p', mode='tcp')
        cfg.pool('p', [('e1', e1)])
        lb = self.tcplb(cfg)
        harness.wait_until(lambda: harness.is_listening(self.http_port), 3)
        harness.wait_started(lb)
        self.assertEqual(http_get(self.http_port, '/health'), (200, 'ok\n'))
        held = self.connect(port)
        held.sendall(b'a')
        self.assertEqual(harness.recv_exact(held, 1), b'a')
        lb.signal(signal.SIGTERM)
        got = harness.wait_until(
            lambda: http_get(self.http_port, '/health', timeout=2) == (503, 'stopping\n'),
            WAIT)
        self.assertTrue(got, http_get(self.http_port, '/health'))
        # stop accepting: the listening socket goes away
        self.assertTrue(harness.wait_until(lambda: not harness.is_listening(port), WAIT),
                        'still listening after SIGTERM')
        with self.assertRaises(OSError):
            harness.connect(port, timeout=2).close()
        # the open connection is served to its end
        held.sendall(b'bytes after SIGTERM')
        self.assertEqual(harness.recv_exact(held, 19), b'bytes after SIGTERM')
        self.assertEqual(http_get(self.http_port, '/health'), (503, 'stopping\n'))
        self.assertTrue(lb.running())
        held.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(held), b'')
        held.close()
        self.assertEqual(lb.wait(5), 0, lb.log_tail())


# ---------------------------------------------------------------- freebind

class FreebindTest(MembershipTestCase):

    def freebind_config(self, ip, port, freebind, server=None):
        cfg = self.config()
        local = cfg.listener('web', pool='p', mode='tcp')
        # a second bind line on the address the machine does not hold
        cfg.sections[-1] = cfg.sections[-1].replace(
            'pool = p', 'bind = %s:%d%s\npool = p' % (ip, port, ' freebind' if freebind else ''))
        cfg.pool('p', [('e1', server or '%s:%d' % (harness.HOST, harness.dead_port()))])
        return cfg, local

    def test_freebind_listens_on_an_address_the_machine_does_not_hold(self):
        ip = harness.foreign_ipv4()
        if ip is None:
            self.skipTest('every test address binds here (ip_nonlocal_bind?)')
        port = harness.free_port()
        e1 = self.backend(harness.EchoBackend, 'e1')
        cfg, local = self.freebind_config(ip, port, True, e1.addr)
        lb = self.tcplb(cfg)
        self.assertTrue(harness.wait_until(lambda: kernel_listens(ip, port), WAIT),
                        'no listening socket on %s:%d' % (ip, port))
        js = lb.stats_json()
        self.assertIn('%s:%d' % (ip, port), harness.find_listener(js, 'web')['binds'])
        # the listener's other bind serves as usual
        s = self.connect(local)
        s.sendall(b'z')
        self.assertEqual(harness.recv_exact(s, 1), b'z')

    def test_without_freebind_the_start_is_refused(self):
        ip = harness.foreign_ipv4()
        if ip is None:
            self.skipTest('every test address binds here (ip_nonlocal_bind?)')
        port = harness.free_port()
        cfg, _ = self.freebind_config(ip, port, False)
        lb = self.tcplb(cfg, start=False)
        with self.assertRaises(AssertionError):
            lb.start()
        self.assertNotEqual(lb.wait(5), 0)
        out = harness.tcplb_output(lb)
        self.assertIn('cannot listen on %s:%d' % (ip, port), out)
        self.assertRegex(out, r'cannot assign requested address|Cannot assign', out)


# ---------------------------------------------------------------- mapping

def which_all(lb, ips, pool='p'):
    """{ip: which answer} in one stats connection."""
    text = lb.stats_raw(''.join('which %s %s\n' % (pool, ip) for ip in ips))
    answers = text.split('\n\n')[:len(ips)]
    return dict(zip(ips, [a.strip() for a in answers]))


SAMPLE_IPS = ['10.%d.%d.%d' % (i, (i * 37) % 256, (i * 101) % 256) for i in range(200)]


class MappingTest(MembershipTestCase):

    def two(self, servers, **pool_keys):
        """Two instances of the same scheduler = source pool."""
        lbs = []
        for i in range(2):
            sub = os.path.join(self.tmp, 'lb%d' % i)    # its own stats socket
            os.mkdir(sub)
            cfg = harness.Config(sub)
            cfg.listener('web', pool='p', mode='tcp')
            cfg.pool('p', servers, scheduler='source', **pool_keys)
            lbs.append(self.tcplb(cfg))
        return lbs

    def digests(self, lbs):
        return [mapping(lb.stats_json(), 'p') for lb in lbs]

    def all_up(self, lbs, names):
        def probe():
            return all(harness.json_servers(lb.stats_json(), 'p').get(n, {}).get('state') == 'up'
                       for lb in lbs for n in names)
        self.assertTrue(harness.wait_until(probe, WAIT),
                        [harness.json_servers(lb.stats_json(), 'p') for lb in lbs])

    def test_equal_config_equal_digest(self):
        bs = [self.backend(harness.EchoBackend, 'e%d' % i) for i in range(3)]
        a, b = self.two([('e%d' % i, bs[i]) for i in range(3)])
        da, db = self.digests([a, b])
        self.assertRegex(da, r'^[0-9a-f]{16}$')
        self.assertEqual(da, db)
        wa, wb = which_all(a, SAMPLE_IPS), which_all(b, SAMPLE_IPS)
        self.assertEqual(wa, wb)
        self.assertEqual({v.split()[1] for v in wa.values()}, {'hash'}, wa)
        self.assertEqual({v.split()[0] for v in wa.values()}, {'e0', 'e1', 'e2'})

    def added_in_another_order(self, **pool_keys):
        bs = [self.backend(harness.EchoBackend, 'e%d' % i) for i in range(5)]
        a, b = self.two([('e0', bs[0]), ('e1', bs[1])], **pool_keys)
        self.all_up([a, b], ['e0', 'e1'])
        d0 = self.digests([a, b])
        self.assertEqual(d0[0], d0[1])
        for lb, order in ((a, (3, 2, 4)), (b, (4, 2, 3))):
            for i in order:
                self.assertRegex(lb.stats('add server p/x%d %s' % (i, bs[i].addr)),
                                 r'^p/x%d (up|down)\n\n$' % i)
        self.all_up([a, b], ['x2', 'x3', 'x4'])
        da, db = self.digests([a, b])
        self.assertNotEqual(da, d0[0])
        self.assertEqual(da, db)
        wa, wb = which_all(a, SAMPLE_IPS), which_all(b, SAMPLE_IPS)
        diff = {ip: (wa[ip], wb[ip]) for ip in SAMPLE_IPS if wa[ip] != wb[ip]}
        self.assertEqual(diff, {})
        self.assertEqual({v.split()[0] for v in wa.values()},
                         {'e0', 'e1', 'x2', 'x3', 'x4'})
        return a, b

    def test_servers_added_in_another_order_give_the_same_placement(self):
        """Servers added with `add server` in a different order on each
        instance (health checks bring them up): equal digests, `which`
        agrees for 200 IPs; a state or weight change on one makes the
        digests differ, the same change on the other makes them equal."""
        a, b = self.added_in_another_order(**CHECKS)
        b.stats('disable server p/x2')
        da, db = self.digests([a, b])
        self.assertNotEqual(da, db)
        wb = which_all(b, SAMPLE_IPS)
        self.assertNotIn('x2', {v.split()[0] for v in wb.values()})
        a.stats('disable server p/x2')
        self.assertEqual(*self.digests([a, b]))
        a.stats('set weight p/e0 3')
        self.assertNotEqual(*self.digests([a, b]))
        b.stats('set weight p/e0 3')
        self.assertEqual(*self.digests([a, b]))
        self.assertEqual(which_all(a, SAMPLE_IPS), which_all(b, SAMPLE_IPS))

    def test_servers_added_up_at_once_give_the_same_placement(self):
        """The same with `health = none` (added servers up at once): each
        addition rebuilds the lookup table over the servers before it (see
        AddServerTest.test_added_server_with_health_none_is_up_at_once), so
        the last added is never placed and the two orders give different
        tables, digests and placements."""
        self.added_in_another_order()


if __name__ == '__main__':
    unittest.main()
