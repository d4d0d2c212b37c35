"""The harness's own backends and clients, without tcplb: when every other
test fails, these say whether the harness or tcplb is at fault."""

import hashlib
import socket
import time
import unittest

import harness


class HarnessTest(unittest.TestCase):

    def backend(self, cls, *args):
        b = cls(*args)
        self.addCleanup(b.stop)
        return b

    def test_http_backend_answers_keep_alive_and_close(self):
        b = self.backend(harness.HttpBackend, 'x')
        s = harness.connect(b.port)
        self.addCleanup(s.close)
        for _ in range(3):
            r = harness.http_request(b.port, close=False, sock=s)
            self.assertEqual((r.status, r.headers['x-backend'], r.body),
                             (200, 'x', b'x\n'))
        r = harness.http_request(b.port)
        self.assertTrue(r.eof)
        self.assertEqual(b.requests, 4)
        self.assertEqual(b.connections, 2)

    def test_echo_backend_echoes_and_finishes_on_half_close(self):
        b = self.backend(harness.EchoBackend)
        got = harness.echo_concurrently(b.port, [b'a' * 100000, b'b' * 10])
        self.assertEqual(got, [b'a' * 100000, b'b' * 10])
        harness.wait_until(lambda: len(b.received) == 2, 3)
        self.assertEqual(b.bytes, 100010)

    def test_sink_backend_replies_after_eof(self):
        b = self.backend(harness.SinkThenSendBackend)
        s = harness.connect(b.port)
        self.addCleanup(s.close)
        s.sendall(b'data')
        s.shutdown(socket.SHUT_WR)
        got = harness.recv_until_eof(s)
        self.assertEqual(got, hashlib.sha256(b'data').digest() + b.payload)
        self.assertEqual(len(b.payload), 1 << 20)

    def test_silent_backend_never_answers_and_stops(self):
        b = harness.SilentBackend()
        s = harness.connect(b.port, timeout=0.3)
        self.addCleanup(s.close)
        s.sendall(b'hello')
        with self.assertRaises(socket.timeout):
            s.recv(10)
        t0 = time.monotonic()
        b.stop()
        self.assertLess(time.monotonic() - t0, 3)

    def test_slow_http_backend_answers_after_its_delay(self):
        b = self.backend(harness.HttpBackend, 'slow', 0.3)
        t0 = time.monotonic()
        r = harness.http_request(b.port)
        self.assertEqual((r.status, r.body), (200, b'slow\n'))
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.assertEqual(len(b.arrivals), 1)

    def test_client_binds_to_the_given_source_ip(self):
        b = self.backend(harness.HttpBackend, 'x')
        s = harness.connect(b.port, source=harness.client_ip(3))
        self.addCleanup(s.close)
        self.assertEqual(s.getsockname()[0], '127.0.0.5')
        r = harness.http_request(b.port, source=harness.client_ip(252))
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            harness.client_ip(253)

    def test_free_port_is_not_listening(self):
        port = harness.free_port()
        self.assertFalse(harness.is_listening(port))
        with self.assertRaises(ConnectionRefusedError):
            harness.connect(port).close()


if __name__ == '__main__':
    unittest.main()
