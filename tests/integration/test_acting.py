"""Acting on cost (../shared/CONTRACT.md section 10; docs/configuration.md:
`scheduler = leasttime`, `slowstart`, `outlier_consecutive`,
`outlier_ejection`, `outlier_max_percent`, `agent_port`, `agent_interval`;
docs/reference.md: Stats socket): tcplb steering by response times,
ramping a server that comes back, ejecting one that fails in a row, obeying
an agent's words, and tools/agent/fpm-agent, php-fpm's agent. Every case
goes through real sockets; states are polled with deadlines, never slept
for; counts are exact wherever round robin makes them so.

The weight in force (`eweight`) is in units of the weight (weight 1 at 50 %
is 0.5), kept in 1/16ths as HAProxy's: a weight of 1 never drops below
1/16 unless an agent says 0 %."""

import collections
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

import harness

AGENT = os.path.join(harness.REPO, 'tools', 'agent', 'fpm-agent')
WAIT = 3.0              # seconds a state change may take before a test fails
SLOW = 0.15             # the slow server's answer time, seconds
AGENT_INTERVAL = 0.2    # seconds

TS = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'


def ms(seconds):
    return '%dms' % round(seconds * 1000)


# ---------------------------------------------------------------- backends

def read_heads(conn, buf):
    """The next request head from conn (and what follows it), or None at
    EOF. GET only: bodies are not expected."""
    while b'\r\n\r\n' not in buf:
        data = conn.recv(65536)
        if not data:
            return None, b''
        buf += data
        if len(buf) > (1 << 20):
            return None, b''
    head, _, rest = buf.partition(b'\r\n\r\n')
    return head.decode('latin-1'), rest


class StatusBackend(harness.Backend):
    """HTTP/1.1 server answering every request, keep-alive or close, with
    the next status of `statuses` (cycled over all its connections),
    `X-Backend: NAME` and body `NAME\\n`, after `delay` seconds.
    `answered` counts the statuses sent."""

    def __init__(self, name, statuses=(200,), delay=0.0):
        self.statuses = list(statuses)
        self.delay = delay
        self.n = 0
        self.answered = collections.Counter()
        super().__init__(name)

    def set_statuses(self, statuses):
        with self.lock:
            self.statuses = list(statuses)
            self.n = 0

    @property
    def requests(self):
        with self.lock:
            return sum(self.answered.values())

    def serve(self, conn):
        buf = b''
        while not self._stop.is_set():
            head, buf = read_heads(conn, buf)
            if head is None:
                return
            if self.delay > 0 and self._stop.wait(self.delay):
                return
            close = 'connection: close' in head.lower()
            with self.lock:
                status = self.statuses[self.n % len(self.statuses)]
                self.n += 1
                self.answered[status] += 1
            body = (self.name + '\n').encode()
            conn.sendall(('HTTP/1.1 %d Status\r\nX-Backend: %s\r\n'
                          'Content-Length: %d\r\nConnection: %s\r\n\r\n'
                          % (status, self.name, len(body),
                             'close' if close else 'keep-alive')).encode() + body)
            if close:
                conn.shutdown(socket.SHUT_WR)
                return


class LineBackend(harness.Backend):
    """A line protocol over TCP: answers each line received with `NAME\\n`,
    after `delay` seconds; `lines` counts them."""

    def __init__(self, name, delay=0.0):
        self.delay = delay
        self.lines = 0
        super().__init__(name)

    def serve(self, conn):
        buf = b''
        while not self._stop.is_set():
            while b'\n' not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            _, _, buf = buf.partition(b'\n')
            if self.delay > 0 and self._stop.wait(self.delay):
                return
            with self.lock:
                self.lines += 1
            conn.sendall((self.name + '\n').encode())


class RstBackend(harness.Backend):
    """Reads until it has `need` bytes (a line, or a request head), then
    resets the connection (SO_LINGER 0) without sending a byte."""

    def serve(self, conn):
        import struct
        buf = b''
        while b'\n' not in buf and len(buf) < 65536:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))


class AgentServer(harness.Backend):
    """An agent as HAProxy's agent-check expects one: each connection gets
    `line` (bytes, sent as is) and a close. mode 'silent' accepts and never
    writes; stop() closes the port (connects are refused)."""

    def __init__(self, line=b'up\n', name='agent'):
        self.line = line
        self.mode = 'line'
        super().__init__(name)

    def say(self, line, mode='line'):
        if isinstance(line, str):
            line = line.encode()
        with self.lock:
            self.line = line
            self.mode = mode

    def serve(self, conn):
        with self.lock:
            line, mode = self.line, self.mode
        if mode == 'silent':
            conn.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    if not conn.recv(4096):
                        return
                except socket.timeout:
                    continue
            return
        try:
            conn.sendall(line)
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(1.0)
            while conn.recv(4096):      # until tcplb closes
                pass
        except OSError:
            pass                        # tcplb may reset an overlong line


class FakeFpmStatus:
    """php-fpm's status page (`GET /fpm-status?json`) on 127.0.0.1: answers
    `status` (a dict) as JSON. stop() closes the port; start() again binds
    the same port. `paths` lists the paths asked for."""

    def __init__(self, status):
        self.status = status
        self.paths = []
        self.port = 0
        self.httpd = None
        self.start()

    def start(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.paths.append(self.path)
                body = json.dumps(owner.status).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((harness.HOST, self.port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = 'http://%s:%d/fpm-status' % (harness.HOST, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(2)
            self.httpd = None


# ---------------------------------------------------------------- clients

def get(port, source=None):
    """One request on a new connection: (X-Backend, status)."""
    r = harness.http_request(port, source=source, timeout=5)
    return r.headers.get('x-backend'), r.status


def line_exchange(port):
    """One line over a new tcp connection: the server name answered."""
    s = harness.connect(port, timeout=5)
    try:
        s.sendall(b'hello\n')
        buf = b''
        while b'\n' not in buf:
            data = s.recv(4096)
            if not data:
                raise AssertionError('EOF before an answer: %r' % buf)
            buf += data
        return buf.decode().strip()
    finally:
        s.close()


def concurrently(fn, nthreads, per_thread):
    """nthreads threads, each calling fn() per_thread times in a row; the
    results (exceptions re-raised)."""
    out, errors = [], []
    lock = threading.Lock()

    def run():
        for _ in range(per_thread):
            try:
                v = fn()
            except Exception as e:          # re-raised below
                with lock:
                    errors.append(e)
                return
            with lock:
                out.append(v)
    threads = [threading.Thread(target=run, daemon=True) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    return out


def read_agent(port):
    """Everything an agent answers on 127.0.0.1:port, line end included."""
    s = socket.create_connection((harness.HOST, port), timeout=3)
    try:
        return harness.recv_until_eof(s, limit=4096).decode()
    finally:
        s.close()


def http_get(port, path):
    with urllib.request.urlopen('http://%s:%d%s' % (harness.HOST, port, path),
                                timeout=5) as r:
        return r.status, r.read().decode()


def answer_lines(text):
    return [ln for ln in text.split('\n') if ln]


# ---------------------------------------------------------------- base class

class ActingTestCase(harness.TcplbTestCase):

    def start(self, servers, mode='http', workers=2, global_keys=None, **pool_keys):
        """tcplb with listener `web` (mode) on pool `p`; returns (lb, port)."""
        cfg = self.config(workers=workers, **(global_keys or {}))
        port = cfg.listener('web', pool='p', mode=mode)
        cfg.pool('p', servers, **pool_keys)
        return self.tcplb(cfg), port

    def srv(self, lb, name, pool='p'):
        return harness.find_server(lb.stats_json(), pool, name)

    def state(self, lb, name):
        return self.srv(lb, name)['state']

    def eweight(self, lb, name):
        return self.srv(lb, name)['eweight']

    def wait_srv(self, lb, name, timeout=WAIT, state=None, eweight=None):
        """Polls until server p/NAME has the state and/or eweight given;
        returns the monotonic time it was seen, or fails with what it is."""
        def probe():
            s = self.srv(lb, name)
            if state is not None and s['state'] != state:
                return None
            if eweight is not None and abs(s['eweight'] - eweight) > 0.0006:
                return None
            return time.monotonic()
        seen = harness.wait_until(probe, timeout, 0.02)
        if not seen:
            s = self.srv(lb, name)
            self.fail('p/%s not state=%s eweight=%s within %.1fs: state %s eweight %s'
                      '\nevents:\n%s' % (name, state, eweight, timeout, s['state'],
                                         s['eweight'], lb.stats('show events')))
        return seen

    def events(self, lb):
        return answer_lines(lb.stats('show events 256'))

    def wait_event(self, lb, pattern, timeout=WAIT, count=1):
        """The count-th `show events` line matching the regex, waited for."""
        rx = re.compile(pattern)

        def probe():
            found = [m for m in (rx.search(ln) for ln in self.events(lb)) if m]
            return found[count - 1] if len(found) >= count else None
        m = harness.wait_until(probe, timeout, 0.05)
        if not m:
            self.fail('no event #%d matching %r within %.1fs:\n%s'
                      % (count, pattern, timeout, '\n'.join(self.events(lb))))
        return m

    def assert_stays(self, lb, name, seconds, state=None, eweight=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s = self.srv(lb, name)
            if state is not None:
                self.assertEqual(s['state'], state, 'p/%s' % name)
            if eweight is not None:
                self.assertAlmostEqual(s['eweight'], eweight, delta=0.0006, msg='p/%s' % name)
            time.sleep(0.05)

    def hits(self, port, n, source=None):
        """X-Backend counts of n sequential requests."""
        return collections.Counter(get(port, source)[0] for _ in range(n))

    def output(self, lb):
        return harness.tcplb_output(lb)


# ---------------------------------------------------------------- leasttime

class LeastTimeTest(ActingTestCase):

    def test_slow_server_gets_far_less_than_under_leastconn(self):
        """The same three backends (one answering after 150 ms) behind a
        leastconn pool and a leasttime pool of one tcplb, driven alike:
        leastconn gives the slow one its exact third of sequential requests,
        leasttime at most its first one or two, and less under concurrency
        too."""
        fast1 = self.backend(harness.HttpBackend, 'fast1')
        fast2 = self.backend(harness.HttpBackend, 'fast2')
        slow = self.backend(harness.HttpBackend, 'slow', delay=SLOW)
        cfg = self.config()
        ports = {}
        for sched in ('leastconn', 'leasttime'):
            ports[sched] = cfg.listener(sched, pool=sched, mode='http')
            cfg.pool(sched, [(b.name, b) for b in (fast1, fast2, slow)], scheduler=sched)
        lb = self.tcplb(cfg)
        seq, conc = {}, {}

        def idle(sched):
            # the next request comes once tcplb has closed the last one:
            # a client sees its answer's end a moment before tcplb's
            # active count does, which leastconn would see
            pool = next(p for p in lb.stats_json()['pools'] if p['name'] == sched)
            return not any(s['active'] for s in pool['servers'])
        for sched, port in ports.items():
            seq[sched] = collections.Counter()
            for _ in range(30):
                seq[sched][get(port)[0]] += 1
                self.assertTrue(harness.wait_until(lambda: idle(sched), 2, 0.002))
            conc[sched] = collections.Counter(
                concurrently(lambda: get(port)[0], 6, 5))
        self.assertEqual(seq['leastconn'], {'fast1': 10, 'fast2': 10, 'slow': 10})
        self.assertLessEqual(seq['leasttime']['slow'], 2, seq)
        self.assertEqual(sum(seq['leasttime'].values()), 30)
        self.assertEqual(sum(conc['leasttime'].values()), 30)
        self.assertLessEqual(conc['leasttime']['slow'], 3, conc)
        lt = seq['leasttime']['slow'] + conc['leasttime']['slow']
        lc = seq['leastconn']['slow'] + conc['leastconn']['slow']
        self.assertLessEqual(3 * lt, lc, (seq, conc))
        # the slow server's estimate is its answer time: p50 about 150 ms
        js = self.settled_stats(lb)
        s = harness.find_server(js, 'leasttime', 'slow')
        self.assertEqual(s['requests'], seq['leasttime']['slow'] + conc['leasttime']['slow'])
        self.assertGreaterEqual(s['rt_ms']['p50'], SLOW * 1000 * 0.9, s)
        # which: a dry run of the same choice names a fast server
        for _ in range(3):
            self.assertIn(lb.stats('which leasttime 127.0.0.9'),
                          ('fast1 schedule\n\n', 'fast2 schedule\n\n'))
        print('[slow server: leastconn %d+%d, leasttime %d+%d of 30+30] '
              % (seq['leastconn']['slow'], conc['leastconn']['slow'],
                 seq['leasttime']['slow'], conc['leasttime']['slow']), end='', flush=True)

    def test_new_pool_spreads_by_round_robin(self):
        """Servers with no estimate count as the fastest: three keep-alive
        connections held open, one after another, land on three different
        servers (each connection's answer gives its server an estimate, and
        its open connection doubles its cost)."""
        backends = [self.backend(harness.HttpBackend, nm) for nm in ('a', 'b', 'c')]
        lb, port = self.start([(b.name, b) for b in backends], scheduler='leasttime')
        got = []
        for _ in range(3):
            s = self.connect(port)
            r = harness.http_request(port, close=False, sock=s)
            self.assertEqual(r.status, 200)
            got.append(r.headers['x-backend'])
        self.assertEqual(sorted(got), ['a', 'b', 'c'])
        js = lb.stats_json()
        self.assertEqual([harness.find_server(js, 'p', n)['active'] for n in 'abc'],
                         [1, 1, 1])
        self.assertEqual(js['pools'][0]['scheduler'], 'leasttime')

    def test_share_follows_the_weights(self):
        """Equal-speed servers (20 ms) of weights 3 and 1: twelve connections
        held open split about 9 to 3 ((active + 1) x rt / weight)."""
        a = self.backend(harness.HttpBackend, 'a', delay=0.02)
        b = self.backend(harness.HttpBackend, 'b', delay=0.02)
        lb, port = self.start([('a', a, 'weight=3'), ('b', b, 'weight=1')],
                              scheduler='leasttime')
        got = collections.Counter()
        for _ in range(12):
            s = self.connect(port)
            r = harness.http_request(port, close=False, sock=s)
            self.assertEqual(r.status, 200)
            got[r.headers['x-backend']] += 1
        self.assertIn(got['a'], (8, 9, 10), got)
        self.assertEqual(got['a'] + got['b'], 12)
        js = lb.stats_json()
        self.assertEqual(harness.find_server(js, 'p', 'a')['active'], got['a'])
        self.assertEqual(harness.find_server(js, 'p', 'b')['active'], got['b'])

    def test_tcp_mode_times_exchanges(self):
        """mode tcp: a line and its answer are an exchange, timed; the
        server that answers after 150 ms gets at most its first one or two
        of 30 sequential connections."""
        backends = [self.backend(LineBackend, 'fast1'), self.backend(LineBackend, 'fast2'),
                    self.backend(LineBackend, 'slow', delay=SLOW)]
        lb, port = self.start([(b.name, b) for b in backends], mode='tcp',
                              scheduler='leasttime')
        got = collections.Counter(line_exchange(port) for _ in range(30))
        self.assertEqual(sum(got.values()), 30)
        self.assertLessEqual(got['slow'], 2, got)
        # (between the two fast ones the lower estimate wins: no fixed split)
        js = self.settled_stats(lb)
        for b in backends:
            s = harness.find_server(js, 'p', b.name)
            self.assertEqual((s['total'], s['requests']), (got[b.name], got[b.name]),
                             b.name)
        slow = harness.find_server(js, 'p', 'slow')
        if got['slow']:
            self.assertGreaterEqual(slow['rt_ms']['p50'], SLOW * 1000 * 0.9, slow)
        self.assertIn(lb.stats('which p 127.0.0.9'),
                      ('fast1 schedule\n\n', 'fast2 schedule\n\n'))


# ---------------------------------------------------------------- slowstart

class SlowStartTest(ActingTestCase):

    def ramp(self, lb, name, weight, length, t_sent):
        """Samples p/NAME's eweight until it is `weight`; asserts it never
        falls, never runs ahead of the linear ramp from 1/20 since t_sent,
        and got there within length + 1.5 s. Returns the samples."""
        samples = []
        deadline = t_sent + length + 1.5
        while True:
            e = self.eweight(lb, name)
            t = time.monotonic()
            samples.append((t - t_sent, e))
            f = min(1.0, (t - t_sent) / length)
            self.assertLessEqual(e, weight * (0.05 + 0.95 * f) + 1 / 16 + 1e-9,
                                 'ahead of the ramp at %.2fs: %s' % (t - t_sent, samples))
            if e >= weight:
                break
            if t > deadline:
                self.fail('p/%s eweight not %s within %.1fs: %s'
                          % (name, weight, length + 1.5, samples))
            time.sleep(0.04)
        values = [e for _, e in samples]
        self.assertEqual(values, sorted(values), 'eweight fell: %s' % samples)
        self.assertEqual(values[-1], weight)
        return samples

    def test_ramp_after_enable_server(self):
        """slowstart = 2s: servers up at start are at full weight at once;
        after disable + enable server, the weight in force starts at 1/20
        (1.0 for weight 20; 1/16, the smallest step, for weight 1) and grows
        in steps to all of it within the slow start."""
        backends = [self.backend(harness.HttpBackend, nm) for nm in ('a', 'b', 'c')]
        lb, port = self.start([('a', backends[0], 'weight=20'),
                               ('b', backends[1], 'weight=20'),
                               ('c', backends[2], 'weight=1')], slowstart='2s')
        for _ in range(5):
            js = lb.stats_json()
            self.assertEqual([harness.find_server(js, 'p', n)['eweight'] for n in 'abc'],
                             [20.0, 20.0, 1.0])
            time.sleep(0.05)
        lb.stats('disable server p/a; disable server p/c')
        self.assertEqual(self.state(lb, 'a'), 'maint')
        t_sent = time.monotonic()
        answer = lb.stats('enable server p/a; enable server p/c')
        self.assertEqual(answer, 'p/a up\n\np/c up\n\n')
        js = lb.stats_json()
        e_a, e_c = (harness.find_server(js, 'p', n)['eweight'] for n in 'ac')
        took = time.monotonic() - t_sent
        # a ramp step lasts 100 ms: a fast first look sees the first step
        self.assertGreaterEqual(e_a, 1.0)
        self.assertLessEqual(e_a, 20 * (0.05 + 0.95 * took / 2) + 1 / 16, took)
        if took < 0.09:
            self.assertEqual(e_a, 1.0)
            self.assertAlmostEqual(e_c, 1 / 16, delta=0.0006)
        self.assertGreater(e_c, 0)
        self.assertLess(e_c, 1.0)
        # the CSV carries it too, with three decimals
        rows = {ln.split(',')[1]: ln.split(',') for ln in answer_lines(lb.stats('show stat'))
                if not ln.startswith('#')}
        header = answer_lines(lb.stats('show stat'))[0].lstrip('# ').split(',')
        self.assertEqual(header[14], 'eweight')
        self.assertRegex(rows['a'][header.index('eweight')], r'^\d+\.\d{3}$')
        samples = self.ramp(lb, 'a', 20.0, 2.0, t_sent)
        self.assertGreaterEqual(len(set(e for _, e in samples)), 5, samples)
        # never early: the whole weight comes no sooner than the last step
        full_at = next(t for t, e in samples if e == 20.0)
        self.assertGreaterEqual(full_at, 2.0 - 0.1 - 0.05, samples)
        self.wait_srv(lb, 'c', eweight=1.0, timeout=1.5)
        self.assertEqual(self.eweight(lb, 'b'), 20.0)
        # a ramping server gets its share as weights say: at full weight,
        # round robin is exact again (20:20:1 over 41)
        self.assertEqual(self.hits(port, 41), {'a': 20, 'b': 20, 'c': 1})

    def test_ramp_after_health_checks_bring_a_server_back(self):
        """A server that goes down by its health checks and comes back up
        ramps; slowstart applies to down -> up as to leaving maint."""
        a = self.backend(harness.SwitchableHttpBackend, 'a')
        b = self.backend(harness.SwitchableHttpBackend, 'b')
        lb, port = self.start([('a', a, 'weight=20'), ('b', b, 'weight=20')],
                              health='http', health_interval='100ms',
                              health_timeout='100ms', rise=1, fall=1, slowstart='1500ms')
        self.assert_stays(lb, 'a', 0.3, state='up', eweight=20.0)
        a.set_health(503)
        self.wait_srv(lb, 'a', state='down')
        self.assertEqual(self.hits(port, 4), {'b': 4})
        t_back = time.monotonic()
        a.set_health(200)
        self.wait_srv(lb, 'a', state='up')
        self.assertLess(self.eweight(lb, 'a'), 20.0)
        self.ramp(lb, 'a', 20.0, 1.5, t_back)
        self.wait_event(lb, r' p/a down->up HTTP status 200, 1/1; after \d+\.\ds')

    def test_server_added_by_reload_ramps(self):
        """A server a reload adds is one that becomes available after the
        start (configuration.md: slowstart, "added at run time"): it ramps;
        the servers that stay keep their whole weight."""
        backends = [self.backend(harness.HttpBackend, nm) for nm in ('a', 'b', 'c')]
        cfg = self.config()
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', backends[0], 'weight=20'), ('b', backends[1], 'weight=20')],
                 slowstart='2s')
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        cfg2 = harness.Config(self.tmp)
        cfg2.listener('web', pool='p', mode='http', port=port)
        cfg2.pool('p', [('a', backends[0], 'weight=20'), ('b', backends[1], 'weight=20'),
                        ('c', backends[2], 'weight=20')], slowstart='2s')
        t_sent = time.monotonic()
        self.reload(lb, cfg2, timeout=5.0)
        e = self.eweight(lb, 'c')
        self.assertEqual((self.eweight(lb, 'a'), self.eweight(lb, 'b')), (20.0, 20.0))
        self.assertLess(e, 20.0, 'a server added by a reload does not ramp')
        self.ramp(lb, 'c', 20.0, 2.0, t_sent)

    def test_no_ramp_for_source(self):
        """scheduler = source: a weight moves clients, not load, so a server
        back from maint has its whole weight at once."""
        backends = [self.backend(harness.HttpBackend, nm) for nm in ('a', 'b')]
        lb, port = self.start([('a', backends[0], 'weight=4'), ('b', backends[1])],
                              scheduler='source', slowstart='2s')
        lb.stats('disable server p/a')
        self.assertEqual(lb.stats('enable server p/a'), 'p/a up\n\n')
        self.assert_stays(lb, 'a', 0.5, state='up', eweight=4.0)


# ---------------------------------------------------------------- outlier ejection

EJECT_RE = (r'^' + TS + r' p/%s up->ejected (?P<n>\d+) consecutive failures'
            r' \((?P<kinds>[^)]*)\); ejected for %s \(%d in a row\); cost: ')
RETURN_RE = (r'^' + TS + r' p/%s ejected->up ejection over; after (?P<after>\d+\.\d)s;'
             r' cost: ')


class OutlierEjectionTest(ActingTestCase):

    def fail_until_ejected(self, lb, port, name, source=None, max_requests=60):
        """Sequential requests until p/NAME is ejected; their X-Backend
        counts."""
        got = collections.Counter()
        for _ in range(max_requests):
            got[get(port, source)[0]] += 1
            if self.state(lb, name) == 'ejected':
                return got
        self.wait_srv(lb, name, state='ejected')
        return got

    def test_http_5xx_eject_and_a_second_ejection_lasts_twice_as_long(self):
        """mode http, outlier_consecutive = 3, outlier_ejection = 1s: a server
        answering 500 is ejected after 3 of them (the event says so, by
        kind), gets nothing while ejected (round robin over the others is
        exact), is back up after 1 s; ejected again at once, for 2 s."""
        a = self.backend(StatusBackend, 'a')
        b = self.backend(StatusBackend, 'b')
        bad = self.backend(StatusBackend, 'bad', statuses=(500,))
        lb, port = self.start([('a', a), ('b', b), ('bad', bad)],
                              outlier_consecutive=3, outlier_ejection='1s')
        got = self.fail_until_ejected(lb, port, 'bad')
        self.assertGreaterEqual(got['bad'], 3, got)
        m = self.wait_event(lb, EJECT_RE % ('bad', '1s', 1))
        self.assertGreaterEqual(int(m['n']), 3)
        self.assertEqual(m['kinds'], '%s http 5xx' % m['n'])
        # while ejected: nothing for bad, a and b alternate exactly
        before = bad.requests
        during = self.hits(port, 10)
        still = self.state(lb, 'bad')
        if still == 'ejected':          # always, unless this machine crawls
            self.assertEqual(during, {'a': 5, 'b': 5})
            self.assertEqual(bad.requests, before)
        # back within its second (+ slack), by the end of the ejection
        self.wait_srv(lb, 'bad', state='up', timeout=1.0 + WAIT)
        m = self.wait_event(lb, RETURN_RE % 'bad')
        self.assertGreaterEqual(float(m['after']), 0.95)
        # still failing: ejected again, now for 2 s (2 in a row)
        self.fail_until_ejected(lb, port, 'bad')
        t2 = time.monotonic()
        self.wait_event(lb, EJECT_RE % ('bad', '2s', 2))
        self.assert_stays(lb, 'bad', 1.5 - (time.monotonic() - t2), state='ejected')
        self.wait_srv(lb, 'bad', state='up', timeout=0.5 + WAIT)
        m = self.wait_event(lb, RETURN_RE % 'bad', count=2)
        self.assertGreaterEqual(float(m['after']), 1.95)
        self.assertEqual(a.answered[500] + b.answered[500], 0)

    def test_a_good_spell_starts_the_count_again(self):
        """An ejection more than twice the last one's length after its end
        is not "in a row": it is the first again, of the base length."""
        a = self.backend(StatusBackend, 'a')
        b = self.backend(StatusBackend, 'b')
        bad = self.backend(StatusBackend, 'bad', statuses=(500,))
        lb, port = self.start([('a', a), ('b', b), ('bad', bad)],
                              outlier_consecutive=3, outlier_ejection='400ms')
        self.fail_until_ejected(lb, port, 'bad')
        self.wait_event(lb, EJECT_RE % ('bad', r'\S+', 1))
        t_up = self.wait_srv(lb, 'bad', state='up', timeout=0.4 + WAIT)
        # a good spell: no traffic for more than 2 x 400 ms
        time.sleep(max(0.0, t_up + 1.1 - time.monotonic()))
        self.fail_until_ejected(lb, port, 'bad')
        self.wait_event(lb, EJECT_RE % ('bad', r'\S+', 1), count=2)
        self.assertEqual(len([ln for ln in self.events(lb) if 'in a row' in ln]), 2)

    def test_refused_connects_eject_and_retries_hide_them(self):
        """mode tcp, a server whose port refuses: failed connects count, the
        retries serve every client, the event names `connect failed`, and
        while ejected no connect is tried on it."""
        a = self.backend(LineBackend, 'a')
        b = self.backend(LineBackend, 'b')
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        lb, port = self.start([('a', a), ('b', b), ('dead', dead)], mode='tcp',
                              outlier_consecutive=3, outlier_ejection='5s')
        served = collections.Counter()
        for _ in range(30):
            served[line_exchange(port)] += 1
            if self.state(lb, 'dead') == 'ejected':
                break
        self.wait_srv(lb, 'dead', state='ejected')
        self.assertLessEqual(set(served), {'a', 'b'}, served)     # retried there
        m = self.wait_event(lb, EJECT_RE % ('dead', '5s', 1))
        self.assertEqual(m['kinds'], '%s connect failed' % m['n'])
        failed = self.srv(lb, 'dead')['failed']
        self.assertGreaterEqual(failed, 3)
        during = collections.Counter(line_exchange(port) for _ in range(10))
        self.assertEqual(during, {'a': 5, 'b': 5})
        self.assertEqual(self.srv(lb, 'dead')['failed'], failed)
        self.assertEqual(self.state(lb, 'dead'), 'ejected')

    def test_502_answered_by_tcplb_counts(self):
        """mode http, a server that resets before answering: tcplb answers
        502, which counts as `502/504 answered by tcplb`."""
        a = self.backend(StatusBackend, 'a')
        rst = self.backend(harness.ResetBeforeReplyBackend, 'rst')
        lb, port = self.start([('a', a), ('rst', rst)], outlier_consecutive=3,
                              outlier_ejection='5s')
        statuses = collections.Counter()
        for _ in range(20):
            statuses[get(port)[1]] += 1
            if self.state(lb, 'rst') == 'ejected':
                break
        self.wait_srv(lb, 'rst', state='ejected')
        self.assertGreaterEqual(statuses[502], 3, statuses)
        m = self.wait_event(lb, EJECT_RE % ('rst', '5s', 1))
        self.assertEqual(m['kinds'], '%s 502/504 answered by tcplb' % m['n'])
        self.assertEqual(self.hits(port, 4), {'a': 4})

    def test_tcp_reset_before_an_answer_counts(self):
        """mode tcp: a server that resets the connection before answering
        the client's bytes ends an exchange unanswered: a failure ("server
        resets before the end of an exchange", CONTRACT 10)."""
        a = self.backend(LineBackend, 'a')
        rst = self.backend(RstBackend, 'rst')
        lb, port = self.start([('a', a), ('rst', rst)], mode='tcp',
                              outlier_consecutive=3, outlier_ejection='5s')
        for _ in range(12):
            s = harness.connect(port, timeout=5)
            try:
                s.sendall(b'hello\n')
                s.recv(4096)            # a's answer, or the end
            except OSError:
                pass
            finally:
                s.close()
        self.assertGreaterEqual(rst.connections, 3)
        self.wait_srv(lb, 'rst', state='ejected', timeout=1.5)
        m = self.wait_event(lb, EJECT_RE % ('rst', '5s', 1))
        self.assertEqual(m['kinds'], '%s reset by the server' % m['n'])

    def test_max_percent_caps_ejections(self):
        """Two servers both answering 500, outlier_max_percent = 50: one of
        them may be ejected at a time, never both; the other's run is
        logged as not ejected."""
        x = self.backend(StatusBackend, 'x', statuses=(500,))
        y = self.backend(StatusBackend, 'y', statuses=(500,))
        lb, port = self.start([('x', x), ('y', y)], outlier_consecutive=3,
                              outlier_ejection='1s', outlier_max_percent=50)
        seen_ejected = set()
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            for _ in range(3):
                self.assertEqual(get(port)[1], 500)
            js = lb.stats_json()
            states = {n: harness.find_server(js, 'p', n)['state'] for n in 'xy'}
            self.assertNotEqual(states, {'x': 'ejected', 'y': 'ejected'})
            seen_ejected |= {n for n, st in states.items() if st == 'ejected'}
        self.assertTrue(seen_ejected, 'nothing ejected')
        self.assertRegex(self.output(lb),
                         r'server p/[xy]: \d+ consecutive failures \(\d+ http 5xx\), '
                         r'not ejected: 1 of the pool\'s 2 servers are already, '
                         r'outlier_max_percent = 50')
        for ln in self.events(lb):      # every change is an ejection or its end
            self.assertRegex(ln, r' p/[xy] (up->ejected|ejected->up) ')

    def test_a_pool_of_one_is_never_ejected(self):
        """floor(50 x 1 / 100) = 0: the only server stays in."""
        bad = self.backend(StatusBackend, 'bad', statuses=(500,))
        lb, port = self.start([('bad', bad)], outlier_consecutive=2,
                              outlier_ejection='5s')
        for _ in range(8):
            self.assertEqual(get(port), ('bad', 500))
        harness.wait_until(lambda: 'not ejected' in self.output(lb), 2)
        self.assertIn('not ejected: 0 of the pool\'s 1 servers are already',
                      self.output(lb))
        self.assertEqual(self.state(lb, 'bad'), 'up')
        self.assertEqual(self.events(lb), [])

    def test_off_by_default(self):
        """No outlier_consecutive: 5xx answers and failed connects eject
        nothing."""
        a = self.backend(StatusBackend, 'a')
        bad = self.backend(StatusBackend, 'bad', statuses=(500,))
        dead = '%s:%d' % (harness.HOST, harness.dead_port())
        lb, port = self.start([('a', a), ('bad', bad), ('dead', dead)])
        statuses = collections.Counter(get(port)[1] for _ in range(30))
        # dead's turns are retried on the others: every client is answered
        self.assertEqual(set(statuses), {200, 500}, statuses)
        self.assertEqual(sum(statuses.values()), 30)
        self.assertGreaterEqual(statuses[500], 10, statuses)
        self.assertGreaterEqual(self.srv(lb, 'dead')['failed'], 5)
        time.sleep(0.2)
        for n in ('a', 'bad', 'dead'):
            self.assertEqual(self.state(lb, n), 'up')
        self.assertEqual(self.events(lb), [])

    def test_a_success_ends_the_run(self):
        """Answers 500, 500, 200 over and over never make 3 in a row; the
        same server answering only 500 is ejected after 3."""
        a = self.backend(StatusBackend, 'a')
        flaky = self.backend(StatusBackend, 'flaky', statuses=(500, 500, 200))
        lb, port = self.start([('a', a), ('flaky', flaky)], outlier_consecutive=3,
                              outlier_ejection='5s')
        self.assertEqual(self.hits(port, 24), {'a': 12, 'flaky': 12})
        self.assertEqual(flaky.answered, {500: 8, 200: 4})
        time.sleep(0.2)
        self.assertEqual(self.state(lb, 'flaky'), 'up')
        self.assertEqual(self.events(lb), [])
        flaky.set_statuses((500,))
        self.fail_until_ejected(lb, port, 'flaky', max_requests=10)
        self.wait_event(lb, EJECT_RE % ('flaky', '5s', 1))

    def test_end_of_an_ejection_ramps_with_slowstart(self):
        """With slowstart, a server back from an ejection starts at 1/20
        of its weight (the end of an ejection makes it available again)."""
        a = self.backend(StatusBackend, 'a')
        b = self.backend(StatusBackend, 'b')
        bad = self.backend(StatusBackend, 'bad', statuses=(500,))
        lb, port = self.start([('a', a), ('b', b), ('bad', bad, 'weight=20')],
                              outlier_consecutive=3, outlier_ejection='500ms',
                              slowstart='1s')
        self.fail_until_ejected(lb, port, 'bad')
        self.assertEqual(self.eweight(lb, 'bad'), 20.0)
        self.wait_srv(lb, 'bad', state='up', timeout=0.5 + WAIT)
        t_up = time.monotonic()
        e = self.eweight(lb, 'bad')
        self.assertGreaterEqual(e, 1.0)
        self.assertLess(e, 20.0)
        self.wait_srv(lb, 'bad', eweight=20.0, timeout=1.0 + WAIT - (time.monotonic() - t_up))


# ---------------------------------------------------------------- agent checks

class AgentCheckTest(ActingTestCase):

    def agent_pool(self, agent_line, **keys):
        """Servers a (with its own agent, agent_port on its server line) and
        b, round robin; returns (lb, port, agent, a, b)."""
        agent = self.backend(AgentServer, agent_line)
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        keys.setdefault('agent_interval', ms(AGENT_INTERVAL))
        keys.setdefault('health_timeout', '300ms')
        lb, port = self.start([('a', a, 'agent_port=%d' % agent.port), ('b', b)], **keys)
        return lb, port, agent, a, b

    def test_percentage_sets_the_weight_in_force(self):
        """`50%` halves a's weight in force: round robin then gives it
        exactly 1 of 3; `0%` gives it nothing; `up 100%` all again. The
        weight the operator set stays 1."""
        lb, port, agent, a, b = self.agent_pool(b'50%\n')
        self.wait_srv(lb, 'a', eweight=0.5)
        self.assertEqual(self.srv(lb, 'a')['weight'], 1)
        self.assertEqual(self.hits(port, 30), {'a': 10, 'b': 20})
        agent.say('0%\n')
        self.wait_srv(lb, 'a', eweight=0.0, state='up')
        self.assertEqual(self.hits(port, 10), {'b': 10})
        agent.say('up 100%\n')
        self.wait_srv(lb, 'a', eweight=1.0)
        self.assertEqual(self.hits(port, 10), {'a': 5, 'b': 5})
        # a weight change is no state change: no event
        self.assertEqual(self.events(lb), [])
        self.assertGreaterEqual(agent.connections, 3)

    def test_states_and_reason(self):
        """drain, maint, up, ready, down # reason: each sets its state
        (events name the agent's words); up/ready clear only what the agent
        set, not an operator's maint."""
        lb, port, agent, a, b = self.agent_pool(b'drain\n')
        self.wait_srv(lb, 'a', state='drain')
        self.assertEqual(self.hits(port, 4), {'b': 4})
        agent.say('up\n')
        self.wait_srv(lb, 'a', state='up')
        agent.say('maint # deploy 42\n')
        self.wait_srv(lb, 'a', state='maint')
        agent.say('ready\n')
        self.wait_srv(lb, 'a', state='up')
        agent.say('down # disk full\n')
        self.wait_srv(lb, 'a', state='down')
        self.assertEqual(self.hits(port, 4), {'b': 4})
        agent.say('UP 75%\r\n')         # words are case-insensitive, CRLF ends too
        self.wait_srv(lb, 'a', state='up', eweight=0.75)
        evs = self.events(lb)
        want = [(r'p/a up->drain agent says drain; '),
                (r'p/a drain->up agent says ready; '),
                (r'p/a up->maint agent says maint # deploy 42; '),
                (r'p/a maint->up agent says ready; '),
                (r'p/a up->down agent says down # disk full; '),
                (r'p/a down->up agent says ready 75%; ')]
        self.assertEqual(len(evs), len(want), evs)
        for ln, rx in zip(evs, want):
            self.assertRegex(ln, '^' + TS + ' ' + rx)
        # the operator's maint outlasts the agent's up
        lb.stats('disable server p/a')
        self.assert_stays(lb, 'a', 3 * AGENT_INTERVAL, state='maint')
        self.assertEqual(lb.stats('enable server p/a'), 'p/a up\n\n')

    def test_garbage_overlong_silent_and_gone_change_nothing(self):
        """Unknown words, a line over 1 KB, a NUL, an agent that accepts and
        never answers, and one whose port is closed: the weight in force and
        the state stay as the agent last set them; each outage is logged
        once, and the agent's return."""
        lb, port, agent, a, b = self.agent_pool(b'50%\n')
        self.wait_srv(lb, 'a', eweight=0.5)

        def unchanged(seconds):
            n0 = agent.connections
            self.assert_stays(lb, 'a', seconds, state='up', eweight=0.5)
            return agent.connections - n0

        agent.say('hello world, 12 x%\n')           # unknown words only
        self.assertGreaterEqual(unchanged(4 * AGENT_INTERVAL), 2)
        self.assertNotIn('not answering', self.output(lb))
        agent.say(b'drain ' + b'x' * 2000 + b'\n')   # over 1 KB: refused whole
        self.assertGreaterEqual(unchanged(4 * AGENT_INTERVAL), 2)
        line = harness.wait_until(lambda: re.search(
            r'agent of p/a not answering \(not an agent line[^)]*\)', self.output(lb)), 1)
        self.assertTrue(line, self.output(lb))
        agent.say(b'maint\x00\n')                    # a NUL
        self.assertGreaterEqual(unchanged(3 * AGENT_INTERVAL), 2)
        agent.say('50%\n')
        harness.wait_until(lambda: 'agent of p/a answers again' in self.output(lb), 2)
        self.assertEqual(self.output(lb).count('agent of p/a answers again'), 1)
        agent.say(b'', mode='silent')                # accepts, never answers
        self.assertGreaterEqual(unchanged(5 * AGENT_INTERVAL), 1)
        agent.stop()                                 # connects refused
        self.assert_stays(lb, 'a', 4 * AGENT_INTERVAL, state='up', eweight=0.5)
        out = self.output(lb)
        self.assertEqual(out.count('agent of p/a not answering'), 2, out)
        self.assertRegex(out, r'agent of p/a not answering \(no line within 300ms\)')
        self.assertEqual(self.hits(port, 6), {'a': 2, 'b': 4})
        self.assertEqual(self.events(lb), [])
        self.assertTrue(lb.running())

    def test_pool_agent_port_and_a_server_line_override(self):
        """agent_port on the pool applies to every server (all on 127.0.0.1
        here, so all ask the same agent); a server line's agent_port wins."""
        pool_agent = self.backend(AgentServer, b'25%\n')
        own_agent = self.backend(AgentServer, b'drain # own agent\n')
        backends = [self.backend(harness.HttpBackend, nm) for nm in ('a', 'b', 'c')]
        lb, port = self.start([('a', backends[0], 'weight=4'), ('b', backends[1]),
                               ('c', backends[2], 'agent_port=%d' % own_agent.port)],
                              agent_port=pool_agent.port,
                              agent_interval=ms(AGENT_INTERVAL))
        self.wait_srv(lb, 'a', eweight=1.0)
        self.wait_srv(lb, 'b', eweight=0.25)
        self.wait_srv(lb, 'c', state='drain', eweight=1.0)
        self.wait_event(lb, r' p/c up->drain agent says drain # own agent; ')
        self.assertEqual(self.hits(port, 15), {'a': 12, 'b': 3})


# ---------------------------------------------------------------- fpm-agent

class FpmAgentTest(ActingTestCase):

    def run_agent(self, status_url, *extra):
        port = harness.free_port()
        proc = subprocess.Popen([sys.executable, AGENT, '--listen', '%s:%d' % (harness.HOST, port),
                                 '--status', status_url, '--interval', '0.1',
                                 '--window', '0'] + list(extra),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def stop():
            harness.stop_process(proc)
            proc.stdout.close()
        self.addCleanup(stop)
        if not harness.wait_until(lambda: harness.is_listening(port), 5):
            self.fail('fpm-agent not listening: %r' % proc.poll())
        return proc, port

    def wait_line(self, port, want, timeout=WAIT):
        """The agent's answer, once it equals want (a str) or matches it (a
        compiled regex)."""
        last = [None]

        def probe():
            last[0] = read_agent(port)
            if isinstance(want, str):
                return last[0] == want
            return want.match(last[0])
        if not harness.wait_until(probe, timeout, 0.05):
            self.fail('fpm-agent says %r, not %r' % (last[0], want))
        return last[0]

    def test_lines_from_the_status_page(self):
        """3 idle of 4 (+1: the worker answering the status page) is 100 %;
        every worker busy with a queue of 3 is 25 % / 4 = 6 %; less than
        --min-weight is 5 %; a status without the figures, and no status
        page at all, are `down # ...`."""
        fpm = FakeFpmStatus({'pool': 'www', 'process manager': 'static',
                             'idle processes': 3, 'active processes': 1,
                             'total processes': 4, 'listen queue': 0,
                             'max listen queue': 0, 'accepted conn': 12})
        self.addCleanup(fpm.stop)
        proc, port = self.run_agent(fpm.url)
        self.wait_line(port, 'up 100% # idle 4.0/4, queue 0.0\n')
        self.assertIn('/fpm-status?json', fpm.paths)
        fpm.status = {'idle processes': 0, 'total processes': 4, 'listen queue': 3}
        self.wait_line(port, 'up 6% # idle 1.0/4, queue 3.0\n')
        fpm.status = {'idle processes': 0, 'total processes': 10, 'listen queue': 9}
        self.wait_line(port, 'up 5% # idle 1.0/10, queue 9.0\n')
        fpm.status = {'total processes': 4}
        self.wait_line(port, re.compile(r"^down # php-fpm status: .*idle processes.*\n$"))
        fpm.stop()
        self.wait_line(port, re.compile(r'^down # php-fpm status: .*refused.*\n$', re.I))
        self.assertIsNone(proc.poll())

    def test_once_prints_one_line(self):
        fpm = FakeFpmStatus({'idle processes': 1, 'total processes': 4, 'listen queue': 0})
        self.addCleanup(fpm.stop)
        r = subprocess.run([sys.executable, AGENT, '--status', fpm.url, '--once'],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout.decode(), 'up 50% # idle 2.0/4, queue 0.0\n')

    def test_tcplb_follows_fpm_agent(self):
        """tcplb asking fpm-agent: half the workers idle -> eweight 0.5; the
        status page gone -> down, with the agent's reason in show events;
        back -> up again."""
        fpm = FakeFpmStatus({'idle processes': 1, 'total processes': 4, 'listen queue': 0})
        self.addCleanup(fpm.stop)
        proc, aport = self.run_agent(fpm.url)
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        lb, port = self.start([('a', a, 'agent_port=%d' % aport), ('b', b)],
                              agent_interval=ms(AGENT_INTERVAL))
        self.wait_srv(lb, 'a', eweight=0.5, state='up')
        self.assertEqual(self.hits(port, 6), {'a': 2, 'b': 4})
        fpm.stop()
        self.wait_srv(lb, 'a', state='down')
        self.wait_event(lb, r' p/a up->down agent says down # php-fpm status: ')
        fpm.status = {'idle processes': 3, 'total processes': 4, 'listen queue': 0}
        fpm.start()                         # the same port again
        self.wait_srv(lb, 'a', state='up', eweight=1.0)
        self.wait_event(lb, r' p/a down->up agent says ready 100% # idle 4\.0/4, '
                            r'queue 0\.0; after \d+\.\ds; ')


# ---------------------------------------------------------------- visibility

class VisibilityTest(ActingTestCase):

    def test_ejected_and_eweight_everywhere(self):
        """An ejected server and an agent's weight are visible in show stat
        (CSV), show stat json, /metrics, /stats.json, /events.json, which
        (a remembered client's move is explained) and explain (kind down)."""
        http_port = harness.free_port()
        agent = self.backend(AgentServer, b'50%\n')
        a = self.backend(StatusBackend, 'a')
        b = self.backend(StatusBackend, 'b')
        bad = self.backend(StatusBackend, 'bad', statuses=(500,))
        lb, port = self.start(
            [('a', a, 'agent_port=%d' % agent.port), ('b', b), ('bad', bad)],
            global_keys={'stats_http': '%s:%d' % (harness.HOST, http_port)},
            persist='source', outlier_consecutive=3, outlier_ejection='20s',
            agent_interval=ms(AGENT_INTERVAL))
        self.wait_srv(lb, 'a', eweight=0.5)
        # find a client IP that lands on bad, and let it fail there
        client = None
        for i in range(30):
            if get(port, harness.client_ip(i))[0] == 'bad':
                client = harness.client_ip(i)
                break
        self.assertIsNotNone(client, 'no client placed on bad')
        self.fail_pinned(lb, port, client)
        # which: the remembered client moves, and says why
        which = lb.stats('which p %s' % client)
        self.assertRegex(which, r'^(a|b) schedule \(remembered on bad, which is ejected\)\n\n$')
        moved = get(port, client)
        self.assertEqual(moved, (which.split(' ')[0], 200))
        # CSV
        lines = answer_lines(lb.stats('show stat'))
        header = lines[0].lstrip('# ').split(',')
        rows = {r[1]: dict(zip(header, r)) for r in (ln.split(',') for ln in lines[1:])}
        self.assertEqual(rows['bad']['state'], 'ejected')
        self.assertEqual((rows['a']['state'], rows['a']['eweight']), ('up', '0.500'))
        self.assertEqual(rows['bad']['eweight'], '1.000')
        self.assertGreaterEqual(int(rows['bad']['http_5xx']), 3)
        # JSON
        js = lb.stats_json()
        self.assertEqual(harness.find_server(js, 'p', 'bad')['state'], 'ejected')
        self.assertEqual(harness.find_server(js, 'p', 'a')['eweight'], 0.5)
        # /stats.json is the same object
        st, body = http_get(http_port, '/stats.json')
        self.assertEqual(st, 200)
        self.assertEqual(harness.find_server(json.loads(body), 'p', 'bad')['state'], 'ejected')
        # /metrics
        st, text = http_get(http_port, '/metrics')
        self.assertEqual(st, 200)
        metric = {}
        for ln in text.splitlines():
            if ln and not ln.startswith('#'):
                name, _, value = ln.rpartition(' ')
                metric[name] = float(value)
        lab = 'pool="p",server="%s"'
        self.assertEqual(metric['tcplb_server_state{%s,state="ejected"}' % (lab % 'bad')], 1)
        self.assertEqual(metric['tcplb_server_state{%s,state="up"}' % (lab % 'bad')], 0)
        self.assertEqual(metric['tcplb_server_state{%s,state="up"}' % (lab % 'a')], 1)
        self.assertEqual(metric['tcplb_server_up{%s}' % (lab % 'bad')], 0)
        self.assertEqual(metric['tcplb_server_eweight{%s}' % (lab % 'a')], 0.5)
        self.assertEqual(metric['tcplb_server_eweight{%s}' % (lab % 'b')], 1.0)
        self.assertEqual(metric['tcplb_server_eweight{%s}' % (lab % 'bad')], 1.0)
        # /events.json
        st, body = http_get(http_port, '/events.json')
        evs = json.loads(body)['events']
        ej = [e for e in evs if e['server'] == 'bad']
        self.assertEqual(len(ej), 1, evs)
        self.assertEqual((ej[0]['pool'], ej[0]['from'], ej[0]['to']), ('p', 'up', 'ejected'))
        self.assertRegex(ej[0]['reason'], r'^\d+ consecutive failures \(\d+ http 5xx\); '
                                          r'ejected for 20s \(1 in a row\)')
        # explain: the ejected server under kind down
        text = lb.stats('explain p')
        self.assertRegex(text, r'(?m)^finding: down bad state ejected: ')
        verdict = [ln for ln in answer_lines(text) if ln.startswith('verdict: ')]
        self.assertEqual(len(verdict), 1, text)
        self.assertIn('down', verdict[0][len('verdict: '):].split(','))
        # a fresh client never gets the ejected server
        self.assertNotIn('bad', self.hits(port, 6, source=harness.client_ip(200)))

    def fail_pinned(self, lb, port, client):
        for _ in range(10):
            if self.state(lb, 'bad') == 'ejected':
                break
            self.assertEqual(get(port, client), ('bad', 500))
        self.wait_srv(lb, 'bad', state='ejected')


if __name__ == '__main__':
    unittest.main()
