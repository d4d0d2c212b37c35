"""The live stats page (docs/reference.md: Metrics and the page) in a real headless
Chromium: it renders every pool's servers with their state and counts
(connections, requests, response times, 5xx, failures) from a running
tcplb, re-renders from /stats.json after a state change without a reload,
shows tcplb's own diagnosis (verdict and findings from /explain.json), the
busiest clients (/clients.json), the last state changes (/events.json) and
a chart of requests/s per server (/history.json).

Chromium is a test dependency (`make test-deps` installs Debian's
`chromium`); without it these tests fail, they do not skip."""

import decimal
import html.parser
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import unittest
import urllib.error
import urllib.request

import harness

CHROMIUM_TIMEOUT = 60        # seconds for one headless run
VIRTUAL_TIME_MS = 3000       # three refreshes of the page's 1 s timer
HISTORY_WAIT = 25            # s: the third 10 s history sample (two rates)
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                  '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']


class PageDom(html.parser.HTMLParser):
    """What the page rendered:

    * pools: {pool: {server: {col: text, 'state_class': [...]}}} from
      table.pool[data-pool] > tr.server[data-server] > td[data-col]
      (span.state's classes other than `state`);
    * verdicts: {pool: {'text', 'classes'}} from span.verdict[data-pool];
    * findings: {pool: [{'kind', 'text'}]} from ul.findings[data-pool] > li;
    * charts: {pool: [data-server of each polyline]} from svg.chart[data-pool];
    * clients: {pool: {ip: {col: text, 'hot': bool}}} from
      table.clients[data-pool] > tr[data-ip] > td[data-col];
    * events: [text of each ul#events > li]; meta, error: div#meta, div#error."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.pools, self.verdicts, self.findings = {}, {}, {}
        self.charts, self.clients, self.events = {}, {}, []
        self.texts = {'meta': '', 'error': ''}
        self._stack = []        # open tags
        self._caps = []         # (depth, dict, key, parts): text being collected
        self._table = self._row = self._list = self._chart = None
        self.feed(text)
        self.close()
        self.meta, self.error = self.texts['meta'].strip(), self.texts['error'].strip()

    def _capture(self, store, key):
        self._caps.append((len(self._stack), store, key, []))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get('class') or '').split()
        self._stack.append(tag)
        if tag == 'table' and 'pool' in cls:
            self._table = self.pools.setdefault(a.get('data-pool'), {})
        elif tag == 'table' and 'clients' in cls:
            self._table = self.clients.setdefault(a.get('data-pool'), {})
        elif tag == 'tr' and self._table is not None and (
                'server' in cls or 'data-ip' in a):
            key = a.get('data-server') if 'server' in cls else a.get('data-ip')
            self._row = self._table.setdefault(key, {})
        elif tag == 'td' and self._row is not None and 'data-col' in a:
            self._capture(self._row, a['data-col'])
            if a['data-col'] == 'ip':
                self._row['hot'] = 'hot' in cls
        elif tag == 'span' and 'state' in cls and self._row is not None:
            self._row['state_class'] = [c for c in cls if c != 'state']
        elif tag == 'span' and 'verdict' in cls:
            v = self.verdicts[a.get('data-pool')] = {
                'classes': [c for c in cls if c != 'verdict']}
            self._capture(v, 'text')
        elif tag == 'ul' and 'findings' in cls:
            self._list = self.findings.setdefault(a.get('data-pool'), [])
        elif tag == 'ul' and a.get('id') == 'events':
            self._list = self.events
        elif tag == 'li' and self._list is not None:
            item = {'kind': a.get('data-kind')}
            self._list.append(item)
            self._capture(item, 'text')
        elif tag == 'svg' and 'chart' in cls:
            self._chart = self.charts.setdefault(a.get('data-pool'), [])
        elif tag == 'polyline' and self._chart is not None:
            self._chart.append(a.get('data-server'))
        elif tag == 'div' and a.get('id') in self.texts:
            self._capture(self.texts, a['id'])

    def handle_endtag(self, tag):
        if tag not in self._stack:
            return
        depth = len(self._stack) - 1 - self._stack[::-1].index(tag)
        del self._stack[depth:]
        while self._caps and self._caps[-1][0] > depth:
            _, store, key, parts = self._caps.pop()
            store[key] = ''.join(parts).strip()
        if tag == 'table':
            self._table = None
        elif tag == 'tr':
            self._row = None
        elif tag == 'ul':
            self._list = None
        elif tag == 'svg':
            self._chart = None

    def handle_data(self, data):
        for cap in self._caps:
            cap[3].append(data)


def chromium():
    path = shutil.which('chromium')
    if path is None:
        raise AssertionError('chromium is not installed: run `make test-deps` '
                             '(it installs Debian\'s chromium package)')
    return path


def run_chromium(tmpdir, args):
    profile = os.path.join(tmpdir, 'chromium-profile')
    cmd = [chromium()] + CHROMIUM_FLAGS + ['--user-data-dir=' + profile] + args
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError('chromium did not finish within %ds: %s'
                             % (CHROMIUM_TIMEOUT, ' '.join(cmd)))
    return p


def dump_dom(tmpdir, url, budget_ms=VIRTUAL_TIME_MS):
    """Loads url in headless Chromium, lets budget_ms of virtual time pass
    (timers and fetches run) and returns the serialized DOM."""
    p = run_chromium(tmpdir, ['--virtual-time-budget=%d' % budget_ms, '--dump-dom', url])
    if p.returncode != 0 or not p.stdout.strip():
        raise AssertionError('chromium exit %d, %d bytes of DOM\n%s'
                             % (p.returncode, len(p.stdout),
                                p.stderr.decode('utf-8', 'replace')[-3000:]))
    return p.stdout.decode('utf-8', 'replace')


def page(tmpdir, url):
    dom = PageDom(dump_dom(tmpdir, url))
    if dom.error:
        raise AssertionError('the page shows an error: %r' % dom.error)
    return dom


def fmt1(v):
    """The page's number format for response times, Number(v).toFixed(1):
    one decimal, a tie rounded up; – for none."""
    if v is None:
        return '–'
    return str(decimal.Decimal(v).quantize(decimal.Decimal('0.1'),
                                           rounding=decimal.ROUND_HALF_UP))


def get_json(port, path):
    with urllib.request.urlopen('http://%s:%d%s' % (harness.HOST, port, path),
                                timeout=5) as r:
        return json.loads(r.read())


def keepalive(port, n, source=None):
    """One connection, n requests on it; returns the answers' X-Backend."""
    s = harness.connect(port, source=source)
    try:
        got = []
        for i in range(n):
            r = harness.http_request(port, close=i == n - 1, sock=s)
            got.append((r.status, r.headers.get('x-backend')))
        return got
    finally:
        s.close()


class _Relay(http.server.BaseHTTPRequestHandler):
    """Passes GETs on to tcplb's stats_http and keeps every JSON answer by
    path; before the second /stats.json it runs the server's
    `before_second` hook (a state change)."""

    def do_GET(self):
        srv = self.server
        path = self.path.split('?')[0]
        with srv.lock:
            srv.paths.append(path)
            n = srv.paths.count('/stats.json')
        if path == '/stats.json' and n == 2 and srv.before_second:
            srv.before_second()
        try:
            with urllib.request.urlopen(srv.upstream + self.path, timeout=5) as r:
                status, body = r.status, r.read()
                ctype = r.headers.get('Content-Type', 'text/plain')
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), 'text/plain'
        if path.endswith('.json'):
            with srv.lock:
                srv.answers.setdefault(path, []).append(json.loads(body))
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Always500(harness.Backend):
    """Answers every request with 500 (keep-alive unless asked to close)."""

    def serve(self, conn):
        buf = b''
        while True:
            while b'\r\n\r\n' not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b'\r\n\r\n')
            close = b'connection: close' in head.lower()
            conn.sendall(b'HTTP/1.1 500 Internal Server Error\r\nX-Backend: bad\r\n'
                         b'Content-Length: 4\r\nConnection: %s\r\n\r\nerr\n'
                         % (b'close' if close else b'keep-alive'))
            if close:
                conn.shutdown(socket.SHUT_WR)
                return


class PageTest(harness.TcplbTestCase):

    def setUp(self):
        super().setUp()
        chromium()      # fail first and clearly when it is missing
        self.web = [self.backend(harness.HttpBackend, n) for n in ('a', 'b')]
        self.http_port = harness.free_port()
        cfg = self.config(stats_http='%s:%d' % (harness.HOST, self.http_port))
        self.port = cfg.listener('web', pool='p', mode='http')
        self.dead = '%s:%d' % (harness.HOST, harness.dead_port())
        # c is dead from the start: the active check (index 2 of 3 in a 300ms
        # interval: after 200 ms) takes it down
        cfg.pool('p', [('a', self.web[0], 'weight=2'), ('b', self.web[1]),
                       ('c', self.dead)],
                 health='tcp', health_interval='300ms', health_timeout='300ms',
                 rise=1, fall=1)
        cfg.pool('other', [('x', self.web[0])])
        self.lb = self.tcplb(cfg)
        self.url = 'http://%s:%d/' % (harness.HOST, self.http_port)
        harness.wait_until(lambda: harness.is_listening(self.http_port), 3)
        self.assertTrue(harness.wait_server_state(self.lb, 'p', 'c', 'down', 5))

    def traffic(self, n=9):
        """n connections of 2 requests each: requests = 2 x connections, so
        the two columns cannot be taken for each other."""
        for _ in range(n):
            self.assertEqual([st for st, _ in keepalive(self.port, 2)], [200, 200])
        return self.settled_stats(
            self.lb, lambda js: harness.find_listener(js, 'web')['total'] == n)

    def assert_page_matches(self, dom, js):
        for pool in js['pools']:
            self.assertIn(pool['name'], dom.pools, 'pool %s not on the page'
                          % pool['name'])
            rows = dom.pools[pool['name']]
            self.assertEqual(sorted(rows), sorted(s['name'] for s in pool['servers']))
            for srv in pool['servers']:
                row = rows[srv['name']]
                with self.subTest(pool=pool['name'], server=srv['name']):
                    self.assertEqual(row.get('name'), srv['name'], row)
                    self.assertEqual(row.get('state'), srv['state'], row)
                    self.assertEqual(row.get('state_class'), [srv['state']], row)
                    for col, key in (('weight', 'weight'), ('active', 'active'),
                                     ('total', 'total'), ('requests', 'requests'),
                                     ('failed', 'failed')):
                        self.assertEqual(row.get(col), str(srv[key]), (col, row))
                    self.assertEqual(row.get('e5xx'), str(srv['responses']['5xx']), row)
                    self.assertEqual(row.get('p50'), fmt1(srv['rt_ms']['p50']), row)
                    self.assertEqual(row.get('p99'), fmt1(srv['rt_ms']['p99']), row)

    def test_page_renders_every_server_with_its_state_and_counts(self):
        js = self.traffic()
        self.assertEqual([s['state'] for s in js['pools'][0]['servers']],
                         ['up', 'up', 'down'])
        dom = page(self.tmp, self.url)
        self.assertEqual(sorted(dom.pools), ['other', 'p'])
        self.assert_page_matches(dom, js)
        self.assertIn('9 accepted', dom.meta)
        # weights 2,1 with c down: 6 and 3 connections, twice that in requests
        p = dom.pools['p']
        self.assertEqual([(p[s]['total'], p[s]['requests']) for s in 'abc'],
                         [('6', '12'), ('3', '6'), ('0', '0')])
        # the share of the last minute's requests, over the up servers
        self.assertEqual([p[s]['share'] for s in 'abc'], ['67 %', '33 %', ''])

    def test_page_shows_a_state_change(self):
        self.traffic(3)
        dom = page(self.tmp, self.url)
        self.assertEqual(dom.pools['p']['b']['state'], 'up')
        self.assertEqual(self.lb.stats('disable server p/b').strip(), 'p/b maint')
        js = self.lb.stats_json()
        dom = page(self.tmp, self.url)
        self.assertEqual(dom.pools['p']['b']['state'], 'maint')
        self.assertEqual(dom.pools['p']['b']['state_class'], ['maint'])
        self.assert_page_matches(dom, js)

    def test_page_lists_the_state_changes_newest_first(self):
        self.assertEqual(self.lb.stats('disable server p/b').strip(), 'p/b maint')
        events = get_json(self.http_port, '/events.json')['events']
        self.assertEqual([(e['pool'], e['server'], e['from'], e['to']) for e in events],
                         [('p', 'c', 'up', 'down'), ('p', 'b', 'up', 'maint')])
        dom = page(self.tmp, self.url)
        self.assertEqual([li['text'] for li in dom.events],
                         ['%s %s/%s %s->%s %s' % (e['ts'], e['pool'], e['server'],
                                                  e['from'], e['to'], e['reason'])
                          for e in reversed(events)])

    def test_page_rerenders_from_stats_json_without_a_reload(self):
        """One page load: the page is fetched once, /stats.json (with
        explain, clients and events) several times; b is disabled between
        the first and the second fetch, and the DOM at the end shows b in
        maint, its event and the diagnosis that changed with it."""
        relay = http.server.ThreadingHTTPServer((harness.HOST, 0), _Relay)
        relay.daemon_threads = True
        relay.lock = threading.Lock()
        relay.paths, relay.answers = [], {}
        relay.upstream = 'http://%s:%d' % (harness.HOST, self.http_port)
        relay.before_second = lambda: self.lb.stats('disable server p/b')
        t = threading.Thread(target=relay.serve_forever, kwargs={'poll_interval': 0.1},
                             daemon=True)
        t.start()
        self.addCleanup(relay.server_close)
        self.addCleanup(relay.shutdown)
        self.traffic(3)
        url = 'http://%s:%d/' % (harness.HOST, relay.server_address[1])
        dom = page(self.tmp, url)
        with relay.lock:
            paths = list(relay.paths)
            answers = {k: list(v) for k, v in relay.answers.items()}
        self.assertEqual(paths.count('/'), 1, paths)
        self.assertEqual(paths.count('/history.json'), 1, paths)   # every 10 s
        self.assertGreaterEqual(paths.count('/stats.json'), 2, paths)
        for path in ('/explain.json', '/clients.json', '/events.json'):
            self.assertGreaterEqual(paths.count(path), 2, (path, paths))
        stats = answers['/stats.json']
        self.assertEqual(harness.find_server(stats[0], 'p', 'b')['state'], 'up')
        self.assertEqual(harness.find_server(stats[-1], 'p', 'b')['state'], 'maint')
        self.assertEqual(dom.pools['p']['b']['state'], 'maint')
        self.assertEqual(dom.pools['p']['a']['state'], 'up')
        # the diagnosis went from "c down, weights 2:1" to "b and c down"
        verdicts = [next(p['explain']['verdict'] for p in ex['pools'] if p['name'] == 'p')
                    for ex in answers['/explain.json']]
        self.assertEqual((verdicts[0], verdicts[-1]), ('down,weights', 'down'), verdicts)
        self.assertEqual(dom.verdicts['p']['text'], 'down')
        self.assertEqual([(f['kind'], f['text'].split(':')[0]) for f in dom.findings['p']],
                         [('down', 'down b'), ('down', 'down c')])
        self.assertEqual([li['text'].split(' ')[1:3] for li in dom.events],
                         [['p/b', 'up->maint'], ['p/c', 'up->down']])


class PageDiagnosisTest(harness.TcplbTestCase):
    """Pool p: fast1, fast2 and slow (30 ms per answer); pool e: ok and bad
    (500 to everything)."""

    def setUp(self):
        super().setUp()
        chromium()
        self.http_port = harness.free_port()
        cfg = self.config(stats_http='%s:%d' % (harness.HOST, self.http_port))
        self.port = cfg.listener('web', pool='p', mode='http')
        self.err_port = cfg.listener('err', pool='e', mode='http')
        cfg.pool('p', [('fast1', self.backend(harness.HttpBackend, 'fast1')),
                       ('fast2', self.backend(harness.HttpBackend, 'fast2')),
                       ('slow', self.backend(harness.HttpBackend, 'slow', delay=0.03))])
        cfg.pool('e', [('ok', self.backend(harness.HttpBackend, 'ok')),
                       ('bad', self.backend(Always500, 'bad'))])
        self.lb = self.tcplb(cfg)
        self.url = 'http://%s:%d/' % (harness.HOST, self.http_port)
        harness.wait_until(lambda: harness.is_listening(self.http_port), 3)

    def test_page_shows_requests_response_times_and_5xx(self):
        got = [a for _ in range(8) for a in keepalive(self.err_port, 3)]
        self.assertEqual(sorted(got), [(200, 'ok')] * 12 + [(500, 'bad')] * 12)
        js = self.settled_stats(self.lb)
        dom = page(self.tmp, self.url)
        rows = dom.pools['e']
        for name in ('ok', 'bad'):
            srv = harness.find_server(js, 'e', name)
            with self.subTest(server=name):
                self.assertEqual((rows[name]['total'], rows[name]['requests'],
                                  rows[name]['failed']), ('4', '12', '0'))
                self.assertEqual(rows[name]['p50'], fmt1(srv['rt_ms']['p50']))
                self.assertEqual(rows[name]['p99'], fmt1(srv['rt_ms']['p99']))
                float(rows[name]['p50']), float(rows[name]['p99'])
        self.assertEqual((rows['ok']['e5xx'], rows['bad']['e5xx']), ('0', '12'))
        # no traffic in p: no response time to show
        self.assertEqual([dom.pools['p'][s]['p50'] for s in ('fast1', 'fast2', 'slow')],
                         ['–'] * 3)
        self.assertEqual(dom.verdicts['e']['text'], 'failing_server')

    def test_page_verdict_and_findings_name_the_slow_server(self):
        got = [keepalive(self.port, 1)[0][1] for _ in range(30)]
        self.assertEqual(sorted(set(got)), ['fast1', 'fast2', 'slow'])
        self.settled_stats(self.lb)
        dom = page(self.tmp, self.url)
        ex = {p['name']: p['explain'] for p in get_json(self.http_port,
                                                        '/explain.json')['pools']}
        self.assertEqual(ex['p']['verdict'], 'slow_server')
        self.assertEqual(dom.verdicts['p'], {'text': 'slow_server',
                                             'classes': ['slow_server']})
        self.assertEqual(dom.findings['p'],
                         [{'kind': f['kind'], 'text': '%s %s: %s' % (f['kind'],
                                                                    f['subject'],
                                                                    f['detail'])}
                          for f in ex['p']['findings']])
        self.assertEqual(dom.findings['p'][0]['text'].split(' ')[:4],
                         ['slow_server', 'slow:', 'rt', 'p50'])
        # pool e had nothing: balanced, no findings list
        self.assertEqual(dom.verdicts['e'], {'text': 'balanced', 'classes': ['balanced']})
        self.assertEqual(dom.findings['e'], [{'kind': 'balanced',
                                             'text': 'balanced e: ' +
                                             ex['e']['findings'][0]['detail']}])
        self.assertGreaterEqual(float(dom.pools['p']['slow']['p50']), 25.0,
                                dom.pools['p']['slow'])

    def test_page_lists_the_busiest_clients_with_their_recent_counts(self):
        sources = ['127.0.0.2'] * 3 + ['127.0.0.3'] * 2 + ['127.0.0.4']
        for ip in sources:
            keepalive(self.port, 1, source=ip)
        self.settled_stats(self.lb)
        cl = {p['name']: p['clients'] for p in get_json(self.http_port,
                                                        '/clients.json')['pools']}
        self.assertEqual([(c['ip'], c['recent'], c['total'], c['active']) for c in cl['p']],
                         [('127.0.0.2', 3, 3, 0), ('127.0.0.3', 2, 2, 0),
                          ('127.0.0.4', 1, 1, 0)])
        dom = page(self.tmp, self.url)
        rows = dom.clients['p']
        self.assertEqual(sorted(rows), ['127.0.0.2', '127.0.0.3', '127.0.0.4'])
        for c in cl['p']:
            self.assertEqual(rows[c['ip']], {'ip': c['ip'], 'recent': str(c['recent']),
                                             'total': str(c['total']),
                                             'active': str(c['active']),
                                             'server': c['server'],
                                             'hot': c['recent'] >= 0.2 * 6})
        self.assertEqual([rows[ip]['hot'] for ip in sorted(rows)], [True, True, False])
        self.assertEqual(dom.clients['e'], {})      # no client in e

    def test_page_charts_requests_per_second_once_history_has_two_rates(self):
        """History is sampled at start and every 10 s; the chart draws a
        server's line from two rates on, i.e. from the third sample."""
        dom = page(self.tmp, self.url)
        self.assertEqual((dom.charts.get('p'), dom.charts.get('e')), ([], []))
        for _ in range(6):
            keepalive(self.port, 2)

        def two_rates():
            h = get_json(self.http_port, '/history.json')
            return h if all(len(s['requests_per_s']) >= 2 for s in h['servers']) else None
        h = harness.wait_until(two_rates, HISTORY_WAIT, 0.5)
        self.assertTrue(h, 'no two history rates after %ds' % HISTORY_WAIT)
        self.assertEqual(h['step_s'], 10)
        self.assertEqual(sorted((s['pool'], s['server']) for s in h['servers']),
                         [('e', 'bad'), ('e', 'ok'), ('p', 'fast1'), ('p', 'fast2'),
                          ('p', 'slow')])
        # 12 requests, 4 per server, all in one 10 s step: 0.4/s in one rate
        for s in h['servers']:
            if s['pool'] == 'p':
                self.assertIn(0.4, s['requests_per_s'], s)
                self.assertAlmostEqual(sum(s['requests_per_s']), 0.4, places=6)
        dom = page(self.tmp, self.url)
        self.assertEqual(sorted(dom.charts['p']), ['fast1', 'fast2', 'slow'])
        self.assertEqual(sorted(dom.charts['e']), ['bad', 'ok'])

    def test_page_screenshot_is_a_real_image(self):
        for _ in range(6):
            keepalive(self.port, 2)
        self.settled_stats(self.lb)
        png = os.path.join(self.tmp, 'page.png')
        p = run_chromium(self.tmp, ['--virtual-time-budget=%d' % VIRTUAL_TIME_MS,
                                    '--hide-scrollbars', '--window-size=1300,1000',
                                    '--screenshot=' + png, self.url])
        self.assertEqual(p.returncode, 0, p.stderr.decode('utf-8', 'replace')[-3000:])
        self.assertTrue(os.path.isfile(png), png)
        with open(png, 'rb') as f:
            data = f.read()
        self.assertEqual(data[:8], b'\x89PNG\r\n\x1a\n')
        self.assertGreater(len(data), 10 * 1024)


if __name__ == '__main__':
    unittest.main()
