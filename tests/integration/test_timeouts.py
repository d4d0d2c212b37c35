"""Timeouts (docs/reference.md: Configuration; Relaying and error answers): idle_timeout closes a silent
connection and only a silent one; server_timeout gives 504 in mode http."""

import time
import unittest

import harness


class TimeoutsTest(harness.TcplbTestCase):

    def start_idle(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        cfg = self.config()
        port = cfg.listener('relay', pool='p', mode='tcp')
        cfg.pool('p', [('echo', echo)], idle_timeout='500ms')
        self.tcplb(cfg)
        return port

    def test_idle_timeout_closes_idle_connection(self):
        port = self.start_idle()
        s = self.connect(port, timeout=3)
        s.sendall(b'hello')
        self.assertEqual(harness.recv_exact(s, 5), b'hello')
        t0 = time.monotonic()
        try:
            got = harness.recv_until_eof(s)
        except ConnectionResetError:
            got = b''
        elapsed = time.monotonic() - t0
        self.assertEqual(got, b'')
        self.assertGreater(elapsed, 0.3, 'closed before idle_timeout')
        self.assertLess(elapsed, 3)

    def test_idle_timeout_spares_a_connection_with_traffic(self):
        port = self.start_idle()
        s = self.connect(port, timeout=3)
        for i in range(8):              # 1.6 s of traffic, 200 ms apart
            msg = b'tick %d\n' % i
            s.sendall(msg)
            self.assertEqual(harness.recv_exact(s, len(msg)), msg)
            time.sleep(0.2)

    def test_server_timeout_answers_504_in_http_mode(self):
        silent = self.backend(harness.SilentBackend, 'silent')
        cfg = self.config()
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('silent', silent)], server_timeout='500ms')
        self.tcplb(cfg)
        t0 = time.monotonic()
        r = harness.http_request(port, timeout=3)
        elapsed = time.monotonic() - t0
        self.assertTrue(r.status_line.startswith('HTTP/1.1 504'), r)
        self.assertEqual(r.headers.get('connection', '').lower(), 'close', r)
        self.assertTrue(r.eof, 'no EOF after the 504')
        self.assertGreater(elapsed, 0.3, '504 before server_timeout')
        self.assertLess(elapsed, 3)


if __name__ == '__main__':
    unittest.main()
