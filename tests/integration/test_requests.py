"""Requests and their cost (docs/reference.md: Stats socket; Access log;
Metrics and the page): in `mode = http` tcplb follows HTTP/1.x both ways
and counts, per server, the requests sent, the answers by status class,
the streams it could not follow and each request's response time; in
`mode = tcp` an exchange (client bytes after the server spoke, or first)
counts as a request. Every case goes through real sockets and asserts the
exact counts in `show stat json`, the CSV, the access log and /metrics,
while the relay stays byte-exact."""

import hashlib
import os
import random
import re
import socket
import subprocess
import time
import unittest
import urllib.request

import harness

TS = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'
CONN_LINE = re.compile(
    r'^ts=' + TS + r' client=(?P<client>\S+) listener=(?P<listener>\S+)'
    r' pool=\S+ server=(?P<server>\S+) connect_ms=\S+ duration_ms=\S+'
    r' bytes_in=(?P<bytes_in>\d+) bytes_out=(?P<bytes_out>\d+) term=(?P<term>[a-z_]+)'
    r' requests=(?P<requests>\d+) rt_ms=(?P<rt_ms>-|\d+\.\d\d)'
    r'(?P<status_field> status=(?P<status>-|\d{3}))?$')
REQUEST_LINE = re.compile(
    r'^type=request ts=' + TS + r' client=(?P<client>\S+) listener=(?P<listener>\S+)'
    r' pool=(?P<pool>\S+) server=(?P<server>\S+) method=(?P<method>\S+)'
    r' path=(?P<path>\S+) status=(?P<status>\d{3}) rt_ms=(?P<rt_ms>-|\d+\.\d\d)'
    r' bytes_in=(?P<bytes_in>\d+) bytes_out=(?P<bytes_out>\d+)$')
NO_RESPONSES = {'1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0}
MIB = 1 << 20
BIG_ANSWER = random.Random(7).randbytes(2 * MIB)
CHUNKS = [b'first chunk\n', b'x' * 5000, b'', b'last\n']     # b'' is skipped


def responses(**classes):
    r = dict(NO_RESPONSES)
    r.update({k[1:] + 'xx': v for k, v in classes.items()})  # c2=5 -> '2xx': 5
    return r


def get(path, method='GET', headers='', body=b''):
    """One request as bytes: HTTP/1.1, keep-alive, Content-Length if a body."""
    if body:
        headers += 'Content-Length: %d\r\n' % len(body)
    return ('%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n' % (method, path, headers)
            ).encode('latin-1') + body


def answer(status, body, extra=''):
    return ('HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n'
            % (status, 'Status', len(body), extra)).encode() + body


def chunked(parts):
    out = b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts if p)
    return out + b'0\r\n\r\n'


def read_head(sock):
    """Reads up to the end of a message head; returns (head, extra bytes)."""
    buf = b''
    while b'\r\n\r\n' not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError('EOF inside a head: %r' % buf[:300])
        buf += data
    head, _, rest = buf.partition(b'\r\n\r\n')
    return head + b'\r\n\r\n', rest


class Reader:
    """Buffered reads from a socket (a backend's request parser)."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b''

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def until(self, sep):
        while sep not in self.buf:
            self.fill()
        out, _, self.buf = self.buf.partition(sep)
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


# ---------------------------------------------------------------- backends

class WebServer(harness.Backend):
    """HTTP/1.1 keep-alive server answering by path:

    * HEAD anything: 200 with `Content-Length: 1234` and no body;
    * /status/NNN: NNN, body `NNN\\n`;
    * /chunked: 200 with the CHUNKS as a chunked body;
    * /big: 200 with BIG_ANSWER, header X-Got: sha256 of the request body;
    * /eof: an HTTP/1.0 200 without Content-Length, ended by closing;
    * /upgrade: 101, a server frame `\\x81\\x05hello`, then echoes to EOF;
    * anything else: 200, body `ok\\n`.

    Request bodies are read by Content-Length or chunked; `Expect:
    100-continue` gets `100 Continue` first. `seen` lists (method, path,
    request body) per request."""

    def __init__(self, name='web'):
        self.seen = []
        super().__init__(name)

    def serve(self, conn):
        r = Reader(conn)
        while True:
            try:
                head = r.until(b'\r\n\r\n').decode('latin-1')
            except EOFError:
                return
            lines = head.split('\r\n')
            method, path, _ = lines[0].split(' ', 2)
            hdr = {}
            for line in lines[1:]:
                k, _, v = line.partition(':')
                hdr[k.strip().lower()] = v.strip()
            if hdr.get('expect', '').lower() == '100-continue':
                conn.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')
            if hdr.get('transfer-encoding', '').lower() == 'chunked':
                body = b''
                while True:
                    size = int(r.until(b'\r\n').split(b';')[0], 16)
                    if size == 0:
                        r.until(b'\r\n')          # no trailers
                        break
                    body += r.exact(size)
                    r.exact(2)
            else:
                body = r.exact(int(hdr.get('content-length', '0')))
            with self.lock:
                self.seen.append((method, path, body))
            path = re.split('[?#]', path)[0]
            if method == 'HEAD':
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n')
            elif path.startswith('/status/'):
                code = int(path[8:])
                conn.sendall(answer(code, b'%d\n' % code))
            elif path == '/chunked':
                conn.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
                             chunked(CHUNKS))
            elif path == '/big':
                conn.sendall(answer(200, BIG_ANSWER, 'X-Got: %s\r\n'
                                    % hashlib.sha256(body).hexdigest()))
            elif path == '/eof':
                conn.sendall(EOF_ANSWER)
                return
            elif path == '/upgrade':
                conn.sendall(UPGRADE_ANSWER)
                data = r.buf
                while True:
                    if data:
                        conn.sendall(data)
                    data = conn.recv(65536)
                    if not data:
                        conn.shutdown(socket.SHUT_WR)
                        return
            else:
                conn.sendall(answer(200, b'ok\n'))


UPGRADE_REQUEST = get('/upgrade', headers='Upgrade: websocket\r\nConnection: Upgrade\r\n'
                                          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                                          'Sec-WebSocket-Version: 13\r\n')
UPGRADE_ANSWER = (b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
                  b'Connection: Upgrade\r\n'
                  b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'
                  b'\x81\x05hello')


EOF_ANSWER = b'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close\n'


class LineServer(harness.Backend):
    """mode tcp: optionally sends `banner` first, then reads `per_answer`
    lines and answers them with one line `ok N\\n` (N counts answers),
    until EOF."""

    def __init__(self, name='lines', banner=b'', per_answer=1):
        self.banner, self.per_answer = banner, per_answer
        super().__init__(name)

    def serve(self, conn):
        if self.banner:
            conn.sendall(self.banner)
        r = Reader(conn)
        n = 0
        while True:
            try:
                for _ in range(self.per_answer):
                    r.until(b'\n')
            except EOFError:
                return
            n += 1
            conn.sendall(b'ok %d\n' % n)


# ---------------------------------------------------------------- tests

class RequestsTestCase(harness.TcplbTestCase):

    def start(self, servers, mode='http', stats_http=False, **listener_keys):
        """tcplb with listener `web` (mode) to pool p of servers; returns
        the listener port."""
        keys = {}
        if stats_http:
            self.http_port = harness.free_port()
            keys['stats_http'] = '%s:%d' % (harness.HOST, self.http_port)
        cfg = self.config(**keys)
        port = cfg.listener('web', pool='p', mode=mode, **listener_keys)
        cfg.pool('p', servers)
        self.lb = self.tcplb(cfg)
        if stats_http:
            harness.wait_until(lambda: harness.is_listening(self.http_port), 3)
        return port

    def server(self, name, pred=None, timeout=3.0):
        """Server p/name in show stat json once all is idle and pred(srv)."""
        js = self.settled_stats(
            self.lb, None if pred is None
            else lambda js: pred(harness.find_server(js, 'p', name)), timeout)
        return harness.find_server(js, 'p', name)

    def conn_lines(self):
        """Access log lines of connections (not type=request), parsed."""
        out = []
        for line in harness.access_log_lines(self.lb):
            if line.startswith('type=request'):
                continue
            m = CONN_LINE.match(line)
            self.assertIsNotNone(m, 'bad access log line: %r' % line)
            out.append(m.groupdict())
        return out

    def wait_log(self, pred=bool, timeout=3.0):
        """The access log's lines once pred(lines) holds (by default: one
        line is there), or the last read after timeout."""
        last = [[]]

        def probe():
            last[0] = harness.access_log_lines(self.lb)
            return pred(last[0])
        harness.wait_until(probe, timeout)
        return last[0]

    def exchange(self, sock, request, expected):
        """Sends request, reads exactly the expected answer bytes, compares."""
        sock.sendall(request)
        got = harness.recv_exact(sock, len(expected))
        self.assertEqual(got, expected)


class HttpRequestCountTest(RequestsTestCase):

    def test_keepalive_50_requests_count_50_answers_and_rt_samples(self):
        web = self.backend(harness.HttpBackend, 'a')
        port = self.start([('a', web)])
        s = self.connect(port)
        for _ in range(50):
            r = harness.http_request(port, close=False, sock=s)
            self.assertEqual((r.status, r.body), (200, b'a\n'))
        s.close()
        srv = self.server('a', lambda v: v['requests'] == 50)
        self.assertEqual((srv['total'], srv['requests'], srv['responses'],
                          srv['http_unparsed'], srv['rt_ms']['samples']),
                         (1, 50, responses(c2=50), 0, 50))
        self.assertEqual(srv['last_minute'], {'connections': 1, 'requests': 50,
                                              'failed': 0, 'responses': 50, '5xx': 0})
        for q in ('p50', 'p90', 'p99', 'mean'):
            self.assertIsInstance(srv['rt_ms'][q], float, srv['rt_ms'])
        self.assertLessEqual(srv['rt_ms']['p50'], srv['rt_ms']['p99'])
        self.wait_log()
        (line,) = self.conn_lines()
        self.assertEqual((line['requests'], line['status'], line['term']),
                         ('50', '200', 'ok'))
        self.assertNotEqual(line['rt_ms'], '-')

    def test_8_pipelined_requests_in_one_write_are_each_counted(self):
        web = self.backend(harness.HttpBackend, 'a')
        port = self.start([('a', web)])
        one = (b'HTTP/1.1 200 OK\r\nX-Backend: a\r\nContent-Type: text/plain\r\n'
               b'Content-Length: 2\r\nConnection: keep-alive\r\n\r\na\n')
        s = self.connect(port)
        self.exchange(s, get('/') * 8, one * 8)
        s.close()
        srv = self.server('a', lambda v: v['responses']['2xx'] == 8)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['rt_ms']['samples'], srv['bytes_in'], srv['bytes_out']),
                         (8, responses(c2=8), 0, 8, 8 * len(get('/')), 8 * len(one)))

    def test_10_pipelined_requests_overflow_the_observer_but_relay_exactly(self):
        """More than 8 requests in flight: the stream is no longer followed
        (http_unparsed 1, the 8 seen counted, no answer counted) while all
        10 answers still arrive byte-exact."""
        web = self.backend(harness.HttpBackend, 'a')
        port = self.start([('a', web)])
        one = (b'HTTP/1.1 200 OK\r\nX-Backend: a\r\nContent-Type: text/plain\r\n'
               b'Content-Length: 2\r\nConnection: keep-alive\r\n\r\na\n')
        s = self.connect(port)
        self.exchange(s, get('/') * 10, one * 10)
        s.close()
        srv = self.server('a')
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['bytes_in'], srv['bytes_out']),
                         (8, NO_RESPONSES, 1, 10 * len(get('/')), 10 * len(one)))

    def test_chunked_request_and_chunked_response_end_where_they_should(self):
        """A chunked upload, a chunked download, then a plain GET on the same
        connection: the observer finds the end of each chunked body, so the
        third request is counted and timed too."""
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        upload = [b'part one;', b'y' * 3000, b'end']
        self.exchange(s, get('/upload', 'POST', 'Transfer-Encoding: chunked\r\n') +
                      chunked(upload), answer(200, b'ok\n'))
        self.exchange(s, get('/chunked'),
                      b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
                      chunked(CHUNKS))
        self.exchange(s, get('/after'), answer(200, b'ok\n'))
        s.close()
        self.assertEqual([(m, p) for m, p, _ in web.seen],
                         [('POST', '/upload'), ('GET', '/chunked'), ('GET', '/after')])
        self.assertEqual(web.seen[0][2], b''.join(upload))
        srv = self.server('w', lambda v: v['responses']['2xx'] == 3)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['rt_ms']['samples']), (3, responses(c2=3), 0, 3))

    def test_head_answer_has_no_body_despite_its_content_length(self):
        """HEAD answered with Content-Length: 1234 and no body, then a GET:
        were the 1234 bytes expected, the GET's answer would be taken for
        them and not counted."""
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        self.exchange(s, get('/', 'HEAD'), b'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n')
        self.exchange(s, get('/status/404'), answer(404, b'404\n'))
        s.close()
        srv = self.server('w', lambda v: v['responses']['4xx'] == 1)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed']),
                         (2, responses(c2=1, c4=1), 0))
        self.wait_log()
        self.assertEqual(self.conn_lines()[0]['status'], '404')

    def test_expect_100_continue_counts_one_interim_and_one_final_answer(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        body = b'k=v&' * 100
        s.sendall(get('/form', 'POST', 'Expect: 100-continue\r\nContent-Length: %d\r\n'
                      % len(body)))
        self.assertEqual(harness.recv_exact(s, 25), b'HTTP/1.1 100 Continue\r\n\r\n')
        self.exchange(s, body, answer(200, b'ok\n'))
        s.close()
        self.assertEqual(web.seen, [('POST', '/form', body)])
        srv = self.server('w', lambda v: v['responses']['2xx'] == 1)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['rt_ms']['samples']), (1, responses(c1=1, c2=1), 0, 1))
        self.assertEqual(srv['last_minute']['responses'], 1)   # final ones only
        self.wait_log()
        line = self.conn_lines()[0]
        self.assertEqual((line['requests'], line['status']), ('1', '200'))

    def test_101_upgrade_relays_the_tunnel_byte_exact_and_stops_counting(self):
        """After a 101 the bytes both ways are no HTTP: an HTTP request sent
        inside the tunnel is not counted, and the stream is not unparsed."""
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        self.exchange(s, UPGRADE_REQUEST, UPGRADE_ANSWER)
        tunnel = [get('/inside-the-tunnel'), random.Random(3).randbytes(50000),
                  b'\x16\x03\x01garbage\r\n\r\n', b'HTTP/1.1 200 OK\r\n\r\n']
        for data in tunnel:
            self.exchange(s, data, data)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), b'')
        s.close()
        srv = self.server('w')
        sent = len(UPGRADE_REQUEST) + sum(map(len, tunnel))
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['bytes_in'], srv['bytes_out']),
                         (1, responses(c1=1), 0, sent,
                          len(UPGRADE_ANSWER) + sum(map(len, tunnel))))
        self.wait_log()
        line = self.conn_lines()[0]
        self.assertEqual((line['requests'], line['status']), ('1', '101'))

    def test_an_upgrade_the_server_refuses_keeps_the_stream_counted(self):
        """`Upgrade: h2c` (what curl --http2 sends to http:// URLs) answered
        200 by an HTTP/1.1 server: the connection stays HTTP/1.1, so the 4
        requests after it must count too. tcplb stops observing at the
        first answer (requests 1, neither counted nor unparsed)."""
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        self.exchange(s, get('/', headers='Connection: Upgrade, HTTP2-Settings\r\n'
                             'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'),
                      answer(200, b'ok\n'))
        for _ in range(4):
            self.exchange(s, get('/'), answer(200, b'ok\n'))
        s.close()
        self.assertEqual(len(web.seen), 5)
        srv = self.server('w')
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed']),
                         (5, responses(c2=5), 0))

    def test_an_answer_ended_by_the_server_closing_is_counted(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        s.sendall(get('/eof'))
        self.assertEqual(harness.recv_until_eof(s), EOF_ANSWER)
        s.close()
        srv = self.server('w', lambda v: v['responses']['2xx'] == 1)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['rt_ms']['samples']), (1, responses(c2=1), 0, 1))

    def garbage_through_http(self, data):
        echo = self.backend(harness.EchoBackend, 'e')
        port = self.start([('e', echo)])
        s = self.connect(port)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), data)
        s.close()
        srv = self.server('e')
        self.wait_log()
        return srv, self.conn_lines()[0]

    def test_tls_client_hello_on_http_listener_is_relayed_and_unparsed(self):
        hello = (b'\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03' +
                 random.Random(5).randbytes(200))
        srv, line = self.garbage_through_http(hello)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['bytes_in'], srv['bytes_out']),
                         (0, NO_RESPONSES, 1, len(hello), len(hello)))
        self.assertEqual((line['requests'], line['rt_ms'], line['status']),
                         ('0', '-', '-'))

    def test_ssh_banner_on_http_listener_is_unparsed_and_no_request(self):
        """'SSH-2.0-x': 'S' may begin a method (SEARCH), so http-parser starts
        a message before it fails at the second byte; tcplb counts that
        start as a request sent to the server (requests 1, requests=1 in
        the log) though no request was ever seen."""
        data = b'SSH-2.0-x\r\n'
        srv, line = self.garbage_through_http(data)
        self.assertEqual(srv['http_unparsed'], 1)
        self.assertEqual((srv['bytes_in'], srv['bytes_out']), (len(data), len(data)))
        self.assertEqual((srv['requests'], line['requests']), (0, '0'))

    def test_status_classes_are_counted_exactly(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        codes = [200, 404, 404, 503, 302, 503, 404, 201, 500, 301]
        s = self.connect(port)
        for code in codes:
            self.exchange(s, get('/status/%d' % code), answer(code, b'%d\n' % code))
        s.close()
        srv = self.server('w', lambda v: v['responses']['3xx'] == 2)
        self.assertEqual(srv['responses'], responses(c2=2, c3=2, c4=3, c5=3))
        self.assertEqual((srv['requests'], srv['rt_ms']['samples']), (10, 10))
        self.assertEqual(srv['last_minute'], {'connections': 1, 'requests': 10,
                                              'failed': 0, 'responses': 10, '5xx': 3})
        csv = self.lb.stats('show stat').splitlines()
        self.assertEqual(csv[0], harness.STAT_CSV_HEADER)
        row = dict(zip(csv[0][2:].split(','), csv[1].split(',')))
        self.assertEqual((row['server'], row['requests'], row['http_5xx']),
                         ('w', '10', '3'))
        self.assertEqual(float(row['rt_p50_ms']), srv['rt_ms']['p50'])
        self.assertEqual(float(row['rt_p99_ms']), srv['rt_ms']['p99'])
        self.wait_log()
        self.assertEqual(self.conn_lines()[0]['status'], '301')

    def test_2mib_both_ways_byte_exact_counted_and_never_spliced(self):
        """2 MiB up and 2 MiB down in one request through the observer, then
        a GET on the same connection: both counted, bytes exact, and not a
        byte through splice() (the same transfer in mode tcp splices)."""
        web = self.backend(WebServer)
        cfg = self.config()
        port = cfg.listener('web', pool='p', mode='http')
        tcp_port = cfg.listener('raw', pool='p', mode='tcp')
        cfg.pool('p', [('w', web)])
        self.lb = self.tcplb(cfg)
        body = random.Random(11).randbytes(2 * MIB)
        req = get('/big', 'POST', body=body)
        ans = answer(200, BIG_ANSWER, 'X-Got: %s\r\n' % hashlib.sha256(body).hexdigest())
        s = self.connect(port)
        s.sendall(req)
        got = harness.recv_exact(s, len(ans))
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(ans).hexdigest())
        self.exchange(s, get('/'), answer(200, b'ok\n'))
        s.close()
        self.assertEqual(hashlib.sha256(web.seen[0][2]).digest(),
                         hashlib.sha256(body).digest())
        srv = self.server('w', lambda v: v['requests'] == 2)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['bytes_in'], srv['bytes_out']),
                         (2, responses(c2=2), 0, len(req) + len(get('/')),
                          len(ans) + len(answer(200, b'ok\n'))))
        self.assertEqual(self.spliced_bytes(), 0)
        # the same in mode tcp: spliced
        s = self.connect(tcp_port)
        s.sendall(req)
        got = harness.recv_exact(s, len(ans))
        s.close()
        self.assertEqual(got, ans)
        self.server('w', lambda v: v['total'] == 2)
        self.assertGreater(self.spliced_bytes(), 0)

    def spliced_bytes(self):
        return harness.show_info(self.lb)['spliced_bytes']

    def test_response_time_of_a_100ms_server_is_measured(self):
        slow = self.backend(harness.HttpBackend, 'slow', delay=0.1)
        fast = self.backend(harness.HttpBackend, 'fast')
        port = self.start([('slow', slow), ('fast', fast)])
        for _ in range(40):
            self.assertEqual(harness.http_request(port).status, 200)
        js = self.settled_stats(self.lb)
        s, f = (harness.find_server(js, 'p', n) for n in ('slow', 'fast'))
        self.assertEqual((s['requests'], f['requests'], s['rt_ms']['samples'],
                          f['rt_ms']['samples']), (20, 20, 20, 20))
        self.assertGreaterEqual(s['rt_ms']['p50'], 90.0, s['rt_ms'])
        self.assertGreaterEqual(s['rt_ms']['p50'], 5 * f['rt_ms']['p50'],
                                (s['rt_ms'], f['rt_ms']))
        self.assertGreaterEqual(s['rt_ms']['mean'], 99.0, s['rt_ms'])   # exact sum

    def test_clear_counters_zeroes_requests_answers_and_rt(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        for code in (200, 503, 404):
            self.exchange(s, get('/status/%d' % code), answer(code, b'%d\n' % code))
        s.close()
        srv = self.server('w', lambda v: v['requests'] == 3)
        self.assertEqual((srv['requests'], srv['responses']['5xx'],
                          srv['last_minute']['requests']), (3, 1, 3))
        self.assertEqual(self.lb.stats('clear counters').strip(), 'counters cleared')
        srv = harness.find_server(self.lb.stats_json(), 'p', 'w')
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed'],
                          srv['rt_ms'], srv['last_minute']),
                         (0, NO_RESPONSES, 0,
                          {'p50': None, 'p90': None, 'p99': None, 'mean': None,
                           'samples': 0},
                          {'connections': 0, 'requests': 0, 'failed': 0,
                           'responses': 0, '5xx': 0}))
        lines = self.lb.stats('show stat').splitlines()
        row = dict(zip(lines[0].lstrip('# ').split(','), lines[1].split(',')))
        self.assertEqual([row[k] for k in ('requests', 'rt_p50_ms', 'rt_p99_ms', 'http_5xx')],
                         ['0', '', '', '0'])


class TcpExchangeTest(RequestsTestCase):

    def test_7_alternating_lines_are_7_exchanges(self):
        port = self.start([('l', self.backend(LineServer))], mode='tcp')
        s = self.connect(port)
        for i in range(1, 8):
            self.exchange(s, b'line %d\n' % i, b'ok %d\n' % i)
        s.close()
        srv = self.server('l', lambda v: v['requests'] == 7)
        self.assertEqual((srv['requests'], srv['rt_ms']['samples'], srv['responses'],
                          srv['http_unparsed']), (7, 7, NO_RESPONSES, 0))
        self.wait_log()
        line = self.conn_lines()[0]
        self.assertEqual((line['requests'], line['status_field']), ('7', None))
        self.assertNotEqual(line['rt_ms'], '-')

    def test_two_client_bursts_before_the_answer_are_one_exchange(self):
        port = self.start([('l', self.backend(LineServer, per_answer=2))], mode='tcp')
        s = self.connect(port)
        s.sendall(b'first\n')
        time.sleep(0.2)         # tcplb relays it on its own
        self.exchange(s, b'second\n', b'ok 1\n')
        s.close()
        srv = self.server('l', lambda v: v['rt_ms']['samples'] == 1)
        self.assertEqual((srv['requests'], srv['rt_ms']['samples'], srv['bytes_in']),
                         (1, 1, 13))

    def test_a_banner_before_the_first_line_is_no_exchange(self):
        port = self.start([('l', self.backend(LineServer, banner=b'220 hello\r\n'))],
                          mode='tcp')
        s = self.connect(port)
        self.assertEqual(harness.recv_exact(s, 11), b'220 hello\r\n')
        self.exchange(s, b'HELO x\n', b'ok 1\n')
        s.close()
        srv = self.server('l', lambda v: v['rt_ms']['samples'] == 1)
        self.assertEqual((srv['requests'], srv['rt_ms']['samples'], srv['bytes_out']),
                         (1, 1, 16))


class RequestLogTest(RequestsTestCase):

    def request_lines(self, n):
        lines = self.wait_log(lambda ls: sum(l.startswith('type=request')
                                             for l in ls) >= n and
                              any(not l.startswith('type=request') for l in ls))
        out = []
        for line in lines:
            if line.startswith('type=request'):
                m = REQUEST_LINE.match(line)
                self.assertIsNotNone(m, 'bad request line: %r' % line)
                out.append(m.groupdict())
        self.assertEqual(len(out), n, lines)
        return out

    def test_log_requests_writes_one_line_per_request_with_its_bytes(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)], log_requests='on')
        sent = [
            (get('/api.php?id=7'), answer(200, b'ok\n'), 'GET', '/api.php', '200'),
            (get('/form', 'POST', body=b'a=1&b=2'), answer(200, b'ok\n'),
             'POST', '/form', '200'),
            (get('/', 'HEAD'), b'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n',
             'HEAD', '/', '200'),
            (get('/status/404#frag'), answer(404, b'404\n'), 'GET', '/status/404', '404'),
            (get('/status/503?q=a+b'), answer(503, b'503\n'),
             'GET', '/status/503', '503'),
        ]
        s = self.connect(port)
        for req, ans, _, _, _ in sent:
            self.exchange(s, req, ans)
        addr = s.getsockname()
        s.close()
        lines = self.request_lines(len(sent))
        for line, (req, ans, method, path, status) in zip(lines, sent):
            with self.subTest(path=path):
                self.assertEqual((line['client'], line['listener'], line['pool'],
                                  line['server'], line['method'], line['path'],
                                  line['status'], line['bytes_in'], line['bytes_out']),
                                 ('%s:%d' % addr, 'web', 'p', 'w', method, path,
                                  status, str(len(req)), str(len(ans))))
                self.assertNotEqual(line['rt_ms'], '-')
        (conn,) = self.conn_lines()
        self.assertEqual((conn['requests'], conn['status'], conn['bytes_in'],
                          conn['bytes_out']),
                         ('5', '503', str(sum(len(x[0]) for x in sent)),
                          str(sum(len(x[1]) for x in sent))))

    def test_log_requests_escapes_odd_bytes_and_cuts_long_paths(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)], log_requests='on')
        paths = [(b'/a\tb"c\\d%e\xe9', '/a%09b%22c%5Cd%e%E9'),
                 (b'/' + b'x' * 399, '/' + 'x' * 255),
                 (b'/' + b'y' * 300 + b'?z=1', '/' + 'y' * 255)]
        s = self.connect(port)
        for raw, _ in paths:
            self.exchange(s, b'GET ' + raw + b' HTTP/1.1\r\nHost: t\r\n\r\n',
                          answer(200, b'ok\n'))
        s.close()
        lines = self.request_lines(len(paths))
        self.assertEqual([l['path'] for l in lines], [p for _, p in paths])
        self.assertEqual([p for _, p, _ in web.seen],
                         [r.decode('latin-1') for r, _ in paths])

    def test_log_requests_keeps_a_256_byte_path_of_escapes_whole(self):
        """The longest path kept, 256 bytes, all but its '/' escaped: 766
        characters, none lost."""
        web = self.backend(WebServer)
        port = self.start([('w', web)], log_requests='on')
        s = self.connect(port)
        self.exchange(s, b'GET /' + b'\xe9' * 300 + b' HTTP/1.1\r\nHost: t\r\n\r\n',
                      answer(200, b'ok\n'))
        s.close()
        (line,) = self.request_lines(1)
        self.assertEqual(line['path'], '/' + '%E9' * 255)

    def test_without_log_requests_only_connection_lines_are_written(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)])
        s = self.connect(port)
        for _ in range(3):
            self.exchange(s, get('/x'), answer(200, b'ok\n'))
        s.close()
        self.wait_log()
        time.sleep(0.3)     # two log flushes: a request line would be there
        lines = harness.access_log_lines(self.lb)
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(self.conn_lines()[0]['requests'], '3')

    def test_check_refuses_log_requests_in_mode_tcp(self):
        cfg = harness.Config(self.tmp)
        cfg.listener('raw', pool='p', mode='tcp', log_requests='on')
        cfg.pool('p', [('a', '127.0.0.1:9')])
        path = os.path.join(self.tmp, 'bad.ini')
        text = cfg.text()
        with open(path, 'w') as f:
            f.write(text)
        line = text.splitlines().index('[listener raw]') + 1
        p = subprocess.run([harness.require_bin(), '-c', '-f', path],
                           capture_output=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stderr.decode().strip().splitlines()[-1],
                         "%s:%d: listener 'raw': log_requests = on needs mode = http"
                         % (path, line))
        with open(path, 'w') as f:
            f.write(text.replace('mode = tcp', 'mode = http'))
        p = subprocess.run([harness.require_bin(), '-c', '-f', path],
                           capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)


class RequestMetricsTest(RequestsTestCase):

    def test_metrics_equal_the_json_counts(self):
        web = self.backend(WebServer)
        port = self.start([('w', web)], stats_http=True)
        codes = [200] * 6 + [404, 503, 503, 301]
        s = self.connect(port)
        for code in codes:
            self.exchange(s, get('/status/%d' % code), answer(code, b'%d\n' % code))
        s.close()
        s = self.connect(port)     # a second connection: an unparsed one
        s.sendall(b'\x16\x03\x01\x00\x01\x01')
        s.close()
        srv = self.server('w', lambda v: v['http_unparsed'] == 1)
        self.assertEqual((srv['requests'], srv['responses'], srv['http_unparsed']),
                         (10, responses(c2=6, c3=1, c4=1, c5=2), 1))
        m = self.metrics()
        lab = 'pool="p",server="w"'
        self.assertEqual(m['tcplb_server_requests_total{%s}' % lab], srv['requests'])
        for cls, n in srv['responses'].items():
            self.assertEqual(m['tcplb_server_responses_total{%s,class="%s"}' % (lab, cls)],
                             n, cls)
        self.assertEqual(m['tcplb_server_http_unparsed_total{%s}' % lab], 1)
        self.assertEqual(m['tcplb_server_response_seconds_count{%s}' % lab], 10)
        self.assertEqual(m['tcplb_server_response_seconds_bucket{%s,le="+Inf"}' % lab], 10)
        self.assertAlmostEqual(m['tcplb_server_response_seconds_sum{%s}' % lab],
                               srv['rt_ms']['mean'] * 10 / 1000, delta=1e-4)

    def metrics(self):
        url = 'http://%s:%d/metrics' % (harness.HOST, self.http_port)
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith('#'):
                key, _, value = line.rpartition(' ')
                out[key] = float(value)
        return out


if __name__ == '__main__':
    unittest.main()
