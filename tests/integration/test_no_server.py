"""Error answers (docs/reference.md: Relaying and error answers): with no server, mode http answers a
complete 503 that every client reads (no RST swallows it) and mode tcp
closes without a byte; the listener counts them as rejected (section 6)."""

import shutil
import subprocess
import unittest

import harness

STATUS_503 = 'HTTP/1.1 503 Service Unavailable'


def raw_get(port):
    """GET without a Connection header: the answer must close on its own."""
    s = harness.connect(port)
    try:
        s.sendall(('GET /x HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n\r\n'
                   % (harness.HOST, port)).encode())
        return harness.read_http_response(s, expect_eof=True)
    finally:
        s.close()


class NoServerTest(harness.TcplbTestCase):

    def start_http(self, servers, **pool_keys):
        cfg = self.config()
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', servers, **pool_keys)
        return self.tcplb(cfg), port

    def assert_complete_error(self, port, status_line, n):
        for i in range(n):
            try:
                r = raw_get(port)
            except ConnectionResetError as e:
                self.fail('try %d: connection reset instead of a complete '
                          'answer: %r' % (i, e))
            self.assertEqual(r.status_line, status_line, 'try %d: %r' % (i, r))
            self.assertEqual(r.headers.get('connection', '').lower(), 'close',
                             'try %d: %r' % (i, r))
            self.assertIn('content-length', r.headers, 'try %d: %r' % (i, r))
            self.assertTrue(r.eof, 'try %d: no EOF after the body' % i)

    def assert_rejected(self, lb, n):
        js = self.settled_stats(
            lb, lambda js: harness.find_listener(js, 'web')['rejected'] == n)
        lst = harness.find_listener(js, 'web')
        self.assertEqual((lst['total'], lst['rejected'], lst['active']), (n, n, 0))
        return js

    def test_http_empty_pool_answers_complete_503_every_time(self):
        lb, port = self.start_http([])
        self.assert_complete_error(port, STATUS_503, 50)
        self.assert_rejected(lb, 50)

    def test_http_all_servers_dead_answers_503(self):
        d1 = '%s:%d' % (harness.HOST, harness.dead_port())
        d2 = '%s:%d' % (harness.HOST, harness.dead_port())
        lb, port = self.start_http([('d1', d1), ('d2', d2)], retries=2)
        self.assert_complete_error(port, STATUS_503, 20)
        js = self.assert_rejected(lb, 20)
        for nm in ('d1', 'd2'):
            srv = harness.find_server(js, 'p', nm)
            self.assertEqual(srv['total'], 0, srv)
            self.assertGreater(srv['failed'], 0, srv)

    @unittest.skipIf(shutil.which('curl') is None, 'curl not installed')
    def test_http_503_is_read_by_curl(self):
        lb, port = self.start_http([])
        url = 'http://%s:%d/' % (harness.HOST, port)
        for i in range(10):
            p = subprocess.run(['curl', '-s', '-o', '/dev/null', '-w',
                                '%{http_code}', '--max-time', '5', url],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=10)
            self.assertEqual((p.returncode, p.stdout), (0, '503'),
                             'try %d: curl %r' % (i, p))
        self.assert_rejected(lb, 10)

    def test_http_server_closing_before_a_byte_answers_502(self):
        closer = self.backend(harness.CloseBeforeReplyBackend, 'closer')
        lb, port = self.start_http([('closer', closer)])
        self.assert_complete_error(port, 'HTTP/1.1 502 Bad Gateway', 10)

    def test_tcp_no_server_closes_without_a_byte(self):
        cfg = self.config()
        port = cfg.listener('web', pool='p', mode='tcp')
        cfg.pool('p', [])
        lb = self.tcplb(cfg)
        for i in range(10):
            s = harness.connect(port)
            try:
                try:
                    s.sendall(b'hello\r\n')
                    got = harness.recv_until_eof(s)
                except (ConnectionResetError, BrokenPipeError):
                    got = b''
                self.assertEqual(got, b'', 'try %d' % i)
            finally:
                s.close()
        self.assert_rejected(lb, 10)


if __name__ == '__main__':
    unittest.main()
