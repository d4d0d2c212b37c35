"""The live stats page (docs/reference.md: Metrics and the page) in a real headless
Chromium: it renders every pool's servers with their state and counts from a
running tcplb, and re-renders from /stats.json after a state change.

Chromium is a test dependency (`make test-deps` installs Debian's
`chromium`); without it these tests fail, they do not skip."""

import html.parser
import http.server
import json
import os
import shutil
import subprocess
import threading
import unittest
import urllib.error
import urllib.request

import harness

CHROMIUM_TIMEOUT = 60        # seconds for one headless run
VIRTUAL_TIME_MS = 3000       # three refreshes of the page's 1 s timer


class PageDom(html.parser.HTMLParser):
    """What the page rendered: {pool: {server: {'name', 'state',
    'state_class', 'weight', 'active', 'total'}}} from
    table.pool[data-pool] > tr.server[data-server]."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.pools = {}
        self.meta = ''
        self._pool = None
        self._row = None
        self._cell = None      # (key, list of text pieces) while inside one
        self._tds = 0
        self._in_meta = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get('class') or '').split()
        if tag == 'table' and 'pool' in classes:
            self._pool = self.pools.setdefault(a.get('data-pool'), {})
        elif tag == 'tr' and 'server' in classes and self._pool is not None:
            self._row = self._pool.setdefault(a.get('data-server'), {})
            self._tds = 0
        elif tag == 'td' and self._row is not None:
            self._tds += 1
            key = {1: 'name', 3: 'weight', 4: 'active', 6: 'total'}.get(self._tds)
            if 'name' in classes:
                key = 'name'
            self._cell = (key, []) if key else None
        elif tag == 'span' and 'state' in classes and self._row is not None:
            self._row['state_class'] = [c for c in classes if c != 'state']
            self._cell = ('state', [])
        elif tag == 'div' and a.get('id') == 'meta':
            self._in_meta = True

    def handle_endtag(self, tag):
        if tag in ('td', 'span') and self._cell is not None:
            key, parts = self._cell
            self._row[key] = ''.join(parts).strip()
            self._cell = None
        elif tag == 'tr':
            self._row = None
        elif tag == 'table':
            self._pool = None
        elif tag == 'div':
            self._in_meta = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1].append(data)
        if self._in_meta:
            self.meta += data


def chromium():
    path = shutil.which('chromium')
    if path is None:
        raise AssertionError('chromium is not installed: run `make test-deps` '
                             '(it installs Debian\'s chromium package)')
    return path


def dump_dom(tmpdir, url, budget_ms=VIRTUAL_TIME_MS):
    """Loads url in headless Chromium, lets budget_ms of virtual time pass
    (timers and fetches run) and returns the serialized DOM."""
    profile = os.path.join(tmpdir, 'chromium-profile')
    cmd = [chromium(), '--headless', '--no-sandbox', '--disable-gpu',
           '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync',
           '--user-data-dir=' + profile,
           '--virtual-time-budget=%d' % budget_ms, '--dump-dom', url]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError('chromium did not finish within %ds: %s'
                             % (CHROMIUM_TIMEOUT, ' '.join(cmd)))
    if p.returncode != 0 or not p.stdout.strip():
        raise AssertionError('chromium exit %d, %d bytes of DOM\n%s'
                             % (p.returncode, len(p.stdout),
                                p.stderr.decode('utf-8', 'replace')[-3000:]))
    return p.stdout.decode('utf-8', 'replace')


class _Relay(http.server.BaseHTTPRequestHandler):
    """Passes GETs on to tcplb's stats_http; before the second /stats.json
    it runs the server's `before_second` hook (a state change)."""

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
        if path == '/stats.json':
            with srv.lock:
                srv.answers.append(json.loads(body))
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


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
        for _ in range(n):
            self.assertEqual(harness.http_request(self.port).status, 200)
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
                    self.assertEqual(row.get('weight'), str(srv['weight']), row)
                    self.assertEqual(row.get('active'), str(srv['active']), row)
                    self.assertEqual(row.get('total'), str(srv['total']), row)

    def test_page_renders_every_server_with_its_state_and_counts(self):
        js = self.traffic()
        self.assertEqual([s['state'] for s in js['pools'][0]['servers']],
                         ['up', 'up', 'down'])
        dom = PageDom(dump_dom(self.tmp, self.url))
        self.assertEqual(sorted(dom.pools), ['other', 'p'])
        self.assert_page_matches(dom, js)
        self.assertIn('9 accepted', dom.meta)
        # weights 2,1 with c down: 6 and 3
        self.assertEqual((dom.pools['p']['a']['total'], dom.pools['p']['b']['total']),
                         ('6', '3'))

    def test_page_shows_a_state_change(self):
        js = self.traffic(3)
        dom = PageDom(dump_dom(self.tmp, self.url))
        self.assertEqual(dom.pools['p']['b']['state'], 'up')
        self.assertEqual(self.lb.stats('disable server p/b').strip(), 'p/b maint')
        js = self.lb.stats_json()
        dom = PageDom(dump_dom(self.tmp, self.url))
        self.assertEqual(dom.pools['p']['b']['state'], 'maint')
        self.assertEqual(dom.pools['p']['b']['state_class'], ['maint'])
        self.assert_page_matches(dom, js)

    def test_page_rerenders_from_stats_json_without_a_reload(self):
        """One page load: the page is fetched once, /stats.json several
        times; b is disabled between the first and the second fetch, and the
        DOM at the end shows b in maint."""
        relay = http.server.ThreadingHTTPServer((harness.HOST, 0), _Relay)
        relay.daemon_threads = True
        relay.lock = threading.Lock()
        relay.paths, relay.answers = [], []
        relay.upstream = 'http://%s:%d' % (harness.HOST, self.http_port)
        relay.before_second = lambda: self.lb.stats('disable server p/b')
        t = threading.Thread(target=relay.serve_forever, kwargs={'poll_interval': 0.1},
                             daemon=True)
        t.start()
        self.addCleanup(relay.server_close)
        self.addCleanup(relay.shutdown)
        self.traffic(3)
        url = 'http://%s:%d/' % (harness.HOST, relay.server_address[1])
        dom = PageDom(dump_dom(self.tmp, url))
        with relay.lock:
            paths, answers = list(relay.paths), list(relay.answers)
        self.assertEqual(paths.count('/'), 1, paths)
        self.assertGreaterEqual(paths.count('/stats.json'), 2, paths)
        first = harness.find_server(answers[0], 'p', 'b')['state']
        self.assertEqual(first, 'up')
        self.assertEqual(harness.find_server(answers[-1], 'p', 'b')['state'], 'maint')
        self.assertEqual(dom.pools['p']['b']['state'], 'maint')
        self.assertEqual(dom.pools['p']['a']['state'], 'up')


if __name__ == '__main__':
    unittest.main()
