"""log_format = json (docs/configuration.md: `[global] log_format`;
docs/observability.md: The access log; man/tcplb.ini.5: log_format;
tools/logreport).

Each case runs the same traffic through two instances that differ only in
log_format (or through one instance reloaded from one format to the other)
and compares the lines of the same connections: a JSON line is one object
with the logfmt line's names in the same order, numbers as JSON numbers and
null where logfmt writes `-`. Lines are waited for (the log is flushed
every 100 ms), never slept for."""

import collections
import csv
import io
import json
import os
import socket
import subprocess
import sys
import unittest

import harness

LOGREPORT = os.path.join(harness.REPO, 'tools', 'logreport')
WAIT = 3.0
# the fields of a connection line and of a request line, by JSON type
INTS = {'bytes_in', 'bytes_out', 'requests', 'status'}
FLOATS = {'connect_ms', 'duration_ms', 'rt_ms'}
STRINGS = {'type', 'ts', 'client', 'listener', 'pool', 'server', 'term', 'method', 'path'}
# what may differ between two runs of the same traffic
VARYING = {'ts', 'client', 'connect_ms', 'duration_ms', 'rt_ms'}


def logfmt_pairs(line):
    """[(name, text)] of a logfmt line, in order (tcplb never quotes: a
    value holds no space)."""
    pairs = []
    for word in line.split(' '):
        name, eq, value = word.partition('=')
        if not eq:
            raise AssertionError('not a logfmt line: %r' % line)
        pairs.append((name, value))
    return pairs


def json_pairs(line):
    """[(name, value)] of a JSON line, in order; fails unless it is one
    object with each name once."""
    try:
        pairs = json.loads(line, object_pairs_hook=lambda kv: kv)
    except ValueError as e:
        raise AssertionError('not JSON (%s): %r' % (e, line))
    if not isinstance(pairs, list):
        raise AssertionError('not a JSON object: %r' % line)
    names = [k for k, _ in pairs]
    if len(names) != len(set(names)):
        raise AssertionError('a name twice: %r' % line)
    return pairs


def request(port, path=b'/', source=None, close=True):
    """Bytes of one GET with a fixed Host (the same size on every
    instance); returns the response."""
    s = harness.connect(port, source=source)
    try:
        s.sendall(b'GET ' + path + b' HTTP/1.1\r\nHost: t\r\nConnection: %s\r\n\r\n'
                  % (b'close' if close else b'keep-alive'))
        return harness.read_http_response(s, expect_eof=close)
    finally:
        s.close()


class LogFormatTestCase(harness.TcplbTestCase):

    def instance(self, log_format, servers, **pool_keys):
        """A tcplb in its own directory: listener `web` (http, log_requests)
        over pool p of servers, listener `raw` (tcp) and `empty` (http)
        over pool e of no server. Returns (lb, {listener: port})."""
        sub = os.path.join(self.tmp, 'lb%d' % len(self._lbs))
        os.mkdir(sub)
        cfg = harness.Config(sub, workers=2, log_format=log_format)
        ports = {
            'web': cfg.listener('web', pool='p', mode='http', log_requests='on'),
            'raw': cfg.listener('raw', pool='p', mode='tcp'),
            'empty': cfg.listener('empty', pool='e', mode='http'),
        }
        cfg.pool('p', servers, **pool_keys)
        cfg.pool('e', [])
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        lb.cfg = cfg
        return lb, ports

    def wait_lines(self, lb, n):
        """The access log's lines once there are n (fails if more)."""
        lines = harness.wait_until(lambda: (lambda ls: ls if len(ls) >= n else None)(
            harness.access_log_lines(lb)), WAIT)
        lines = lines or harness.access_log_lines(lb)
        self.assertEqual(len(lines), n, '\n'.join(lines))
        return lines

    def assert_same_line(self, text_line, js_line):
        """js_line is text_line in JSON: the same names in the same order,
        '-' as null, numbers typed, the values that do not vary equal."""
        text = logfmt_pairs(text_line)
        js = json_pairs(js_line)
        self.assertEqual([k for k, _ in js], [k for k, _ in text],
                         'names differ:\n%s\n%s' % (text_line, js_line))
        for (name, tv), (_, jv) in zip(text, js):
            with self.subTest(field=name):
                if tv == '-':
                    self.assertIsNone(jv, js_line)
                    continue
                self.assertIsNotNone(jv, 'null where logfmt has %r: %s' % (tv, js_line))
                if name in INTS:
                    self.assertIs(type(jv), int, js_line)
                    self.assertRegex(js_line, r'"%s":%d[,}]' % (name, jv))
                elif name in FLOATS:
                    self.assertIs(type(jv), float, js_line)
                    self.assertRegex(js_line, r'"%s":\d+\.\d+[,}]' % name)
                else:
                    self.assertIn(name, STRINGS, 'a field this test does not know')
                    self.assertIs(type(jv), str, js_line)
                if name == 'client':
                    self.assertEqual(jv.rsplit(':', 1)[0], tv.rsplit(':', 1)[0])
                elif name not in VARYING:
                    self.assertEqual(str(jv), tv, js_line)


class JsonLineTest(LogFormatTestCase):

    def same_traffic(self, ports):
        """Traffic with every kind of line: a request, three on one
        keep-alive connection, a client that sends nothing, a tcp
        connection, a connection to a pool with no server (503)."""
        request(ports['web'], b'/index.html', source='127.0.0.5')
        s = harness.connect(ports['web'], source='127.0.0.6')
        for i in range(3):
            s.sendall(b'GET /k%d HTTP/1.1\r\nHost: t\r\n\r\n' % i)
            self.assertEqual(harness.read_http_response(s).status, 200)
        s.close()
        s = harness.connect(ports['raw'], source='127.0.0.7')
        s.sendall(b'GET /raw HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(harness.recv_until_eof(s).startswith(b'HTTP/1.1 200'))
        s.close()
        self.assertEqual(request(ports['empty'], source='127.0.0.8').status, 503)

    def test_json_lines_are_the_logfmt_lines_as_objects(self):
        """Two instances, the same traffic: each connection's JSON line has
        the logfmt line's names in its order, numbers as numbers, null for
        `-`; the request lines too."""
        web = self.backend(harness.HttpBackend, 'a')
        text_lb, text_ports = self.instance('logfmt', [('a', web)], health='none')
        js_lb, js_ports = self.instance('json', [('a', web)], health='none')
        for ports, lb in ((text_ports, text_lb), (js_ports, js_lb)):
            self.same_traffic(ports)
        # 4 connection lines, 4 request lines
        text_lines = self.wait_lines(text_lb, 8)
        js_lines = self.wait_lines(js_lb, 8)
        for line in js_lines:
            self.assertTrue(line.startswith('{') and line.endswith('}'), line)

        def key(line, parse):
            d = dict(parse(line))
            return (d.get('type', 'conn'), str(d['client']).rsplit(':', 1)[0],
                    d.get('path', ''))
        text_by = {key(l, logfmt_pairs): l for l in text_lines}
        js_by = {key(l, json_pairs): l for l in js_lines}
        self.assertEqual(sorted(text_by), sorted(js_by))
        for k in sorted(text_by):
            with self.subTest(line=k):
                self.assert_same_line(text_by[k], js_by[k])

        conns = {d['client'].rsplit(':', 1)[0]: d for d in
                 (dict(json_pairs(l)) for l in js_lines) if 'type' not in d}
        # the no-server connection: server, connect_ms and rt_ms null
        ns = conns['127.0.0.8']
        self.assertEqual((ns['listener'], ns['server'], ns['connect_ms'], ns['rt_ms'],
                          ns['term'], ns['requests']),
                         ('empty', None, None, None, 'no_server', 0))
        self.assertIn('status', ns)
        # a tcp listener's line has no status at all, like logfmt's
        self.assertNotIn('status', conns['127.0.0.7'])
        self.assertEqual(list(conns['127.0.0.6'])[-1], 'status')
        self.assertEqual((conns['127.0.0.6']['requests'], conns['127.0.0.6']['status'],
                          conns['127.0.0.6']['server']), (3, 200, 'a'))
        self.assertIs(type(conns['127.0.0.6']['rt_ms']), float)

        reqs = [dict(json_pairs(l)) for l in js_lines if l.startswith('{"type":')]
        self.assertEqual(sorted(r['path'] for r in reqs),
                         ['/index.html', '/k0', '/k1', '/k2'])
        for r in reqs:
            with self.subTest(path=r['path']):
                self.assertEqual(list(r), ['type', 'ts', 'client', 'listener', 'pool',
                                           'server', 'method', 'path', 'status', 'rt_ms',
                                           'bytes_in', 'bytes_out'])
                self.assertEqual((r['type'], r['method'], r['status'], r['server']),
                                 ('request', 'GET', 200, 'a'))
                self.assertIs(type(r['rt_ms']), float)
                conn = 'close' if r['path'] == '/index.html' else 'keep-alive'
                self.assertEqual(r['bytes_out'], len(
                    'HTTP/1.1 200 OK\r\nX-Backend: a\r\nContent-Type: text/plain\r\n'
                    'Content-Length: 2\r\nConnection: %s\r\n\r\na\n' % conn))
                self.assertRegex(r['ts'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')

    def test_a_connection_without_a_request_has_null_status_and_rt(self):
        """An http client that sends nothing and closes: status and rt_ms
        null (logfmt `-`), requests 0."""
        web = self.backend(harness.HttpBackend, 'a')
        lb, ports = self.instance('json', [('a', web)], health='none')
        s = harness.connect(ports['web'])
        self.assertTrue(harness.wait_until(
            lambda: harness.find_listener(lb.stats_json(), 'web')['active'] == 1, WAIT))
        s.close()
        (line,) = self.wait_lines(lb, 1)
        d = dict(json_pairs(line))
        self.assertEqual((d['requests'], d['rt_ms'], d['status'], d['bytes_in']),
                         (0, None, None, 0), line)

    def test_odd_request_paths_stay_valid_json(self):
        """A path with `"`, `\\`, a tab, `%`, Latin-1 and UTF-8 bytes: the
        request line is valid JSON, its path the %XX form logfmt writes;
        a 300-byte path of escapes (900 characters) is kept whole in both."""
        web = self.backend(harness.HttpBackend, 'a')
        paths = [b'/a\tb"c\\d%e\xe9', '/caf\u00e9/\u65e5'.encode('utf-8'),
                 b'/q"' + b'\\' * 40 + b'?x="y"', b'/' + b'\xe9' * 300]
        want = ['/a%09b%22c%5Cd%e%E9', '/caf%C3%A9/%E6%97%A5',
                '/q%22' + '%5C' * 40, '/' + '%E9' * 255]
        got = {}
        for fmt in ('logfmt', 'json'):
            lb, ports = self.instance(fmt, [('a', web)], health='none')
            s = harness.connect(ports['web'])
            for p in paths:
                s.sendall(b'GET ' + p + b' HTTP/1.1\r\nHost: t\r\n\r\n')
                self.assertEqual(harness.read_http_response(s).status, 200)
            s.close()
            lines = self.wait_lines(lb, len(paths) + 1)
            got[fmt] = [l for l in lines if l.startswith(('type=request', '{"type"'))]
        self.assertEqual([dict(logfmt_pairs(l))['path'] for l in got['logfmt']], want)
        self.assertEqual([dict(json_pairs(l))['path'] for l in got['json']], want)
        for t, j in zip(got['logfmt'], got['json']):
            self.assert_same_line(t, j)

    def test_a_reload_applies_the_format_to_the_lines_written_after_it(self):
        """logfmt, then json by a reload, then logfmt again: each line is
        in the format in force when it is written, so a connection opened
        before the reload and closed after it is logged in the new one."""
        web = self.backend(harness.HttpBackend, 'a')
        lb, ports = self.instance('logfmt', [('a', web)], health='none')
        request(ports['web'], b'/before', source='127.0.0.11')
        held = harness.connect(ports['web'], source='127.0.0.12')
        held.sendall(b'GET /held HTTP/1.1\r\nHost: t\r\n\r\n')
        self.assertEqual(harness.read_http_response(held).status, 200)
        lines = self.wait_lines(lb, 3)      # /before: 2 lines, /held: its request
        self.assertTrue(all(l.startswith(('ts=', 'type=')) for l in lines), lines)

        self.reload(lb, lb.cfg.text().replace('log_format = logfmt', 'log_format = json'))
        request(ports['web'], b'/after', source='127.0.0.13')
        held.close()
        lines = self.wait_lines(lb, 6)
        self.assertEqual([l[0] for l in lines[3:]], ['{'] * 3, lines)
        after = [dict(json_pairs(l)) for l in lines[3:]]
        self.assertEqual(collections.Counter(d['client'].rsplit(':', 1)[0] for d in after
                                             if 'type' not in d),
                         {'127.0.0.12': 1, '127.0.0.13': 1})
        held_line = next(d for d in after if d['client'].startswith('127.0.0.12:'))
        self.assertEqual((held_line['requests'], held_line['status']), (1, 200))

        self.reload(lb, lb.cfg.text())
        request(ports['web'], b'/again', source='127.0.0.14')
        lines = self.wait_lines(lb, 8)
        self.assertTrue(all(l.startswith(('ts=', 'type=')) for l in lines[6:]), lines)

    def test_check_refuses_an_unknown_format(self):
        path = os.path.join(self.tmp, 'bad.ini')
        with open(path, 'w') as f:
            f.write('[global]\nlog_format = xml\n[listener web]\nbind = 127.0.0.1:%d\n'
                    'pool = p\n[pool p]\n' % harness.free_port())
        p = subprocess.run([harness.require_bin(), '-c', '-f', path], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "%s:2: log_format: expected logfmt or json, got 'xml'\n"
                         % path)


# ---------------------------------------------------------------- logreport

def logreport_csv(*args):
    p = subprocess.run([sys.executable, LOGREPORT, '--csv'] + list(args),
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError('logreport %s: exit %d\n%s' % (args, p.returncode, p.stderr))
    return p.stdout, p.stderr


def csv_blocks(text):
    """{section: [rows]} of logreport --csv, the totals' first/last (times)
    and rt columns left out."""
    blocks = collections.defaultdict(list)
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0] == 'section':
            continue
        if row[0] == 'totals' and row[1] in ('first', 'last'):
            continue
        if row[0] == 'paths':
            row = row[:5] + row[6:]     # rt_p50_ms varies
        blocks[row[0]].append(row)
    return dict(blocks)


class LogreportTest(LogFormatTestCase):

    def test_logreport_reads_json_as_it_reads_logfmt(self):
        """The same traffic logged as logfmt and as JSON: logreport --csv
        gives the same tables (servers, imbalance, clients, terms, totals;
        --by path), and both files at once count everything twice."""
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        logs = {}
        for fmt in ('logfmt', 'json'):
            lb, ports = self.instance(fmt, [('a', a), ('b', b)], health='none')
            for i in range(12):
                self.assertEqual(request(ports['web'], b'/p%d' % (i % 3),
                                         source=harness.client_ip(i % 4)).status, 200)
            self.assertEqual(request(ports['empty'], source=harness.client_ip(5)).status,
                             503)
            self.wait_lines(lb, 25)
            logs[fmt] = lb.log_path
        text_out, text_err = logreport_csv(logs['logfmt'])
        js_out, js_err = logreport_csv(logs['json'])
        self.assertEqual((text_err, js_err), ('', ''))
        text_blocks, js_blocks = csv_blocks(text_out), csv_blocks(js_out)
        self.assertEqual(js_blocks, text_blocks)
        servers = {(r[1], r[2]): r[3] for r in js_blocks['servers']}
        self.assertEqual(servers, {('p', 'a'): '6', ('p', 'b'): '6', ('e', '-'): '1'})
        self.assertIn(['totals', 'unparsable', '0'], js_blocks['totals'])
        self.assertIn(['totals', 'lines', '25'], js_blocks['totals'])

        text_out, _ = logreport_csv('--by', 'path', logs['logfmt'])
        js_out, _ = logreport_csv('--by', 'path', logs['json'])
        self.assertEqual(csv_blocks(js_out), csv_blocks(text_out))
        self.assertEqual(sorted(r[1] for r in csv_blocks(js_out)['paths']),
                         ['/p0', '/p1', '/p2'])

        both, _ = logreport_csv(logs['logfmt'], logs['json'])
        servers = {(r[1], r[2]): r[3] for r in csv_blocks(both)['servers']}
        self.assertEqual(servers, {('p', 'a'): '12', ('p', 'b'): '12', ('e', '-'): '2'})


if __name__ == '__main__':
    unittest.main()
