"""SIGTERM (docs/reference.md: Command line and signals): stop accepting, let in-flight connections
finish for up to shutdown_timeout, then exit 0."""

import random
import signal
import socket
import threading
import time
import unittest

import harness


def echo_round(sock, size, seed):
    """Sends size bytes (from a thread, so a full pipe cannot deadlock) and
    reads their echo; True if it came back exact."""
    data = random.Random(seed).randbytes(size)
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    got = harness.recv_exact(sock, size)
    sender.join(10)
    return got == data


class ShutdownTest(harness.TcplbTestCase):

    def start(self, shutdown_timeout):
        echo = self.backend(harness.EchoBackend, 'echo')
        cfg = self.config(shutdown_timeout=shutdown_timeout)
        port = cfg.listener('relay', pool='p', mode='tcp')
        cfg.pool('p', [('echo', echo)])
        return self.tcplb(cfg), port

    def assert_not_served(self, port):
        """A new connection is refused, reset, closed or left unanswered."""
        try:
            s = socket.create_connection((harness.HOST, port), timeout=2)
        except (ConnectionRefusedError, socket.timeout):
            return
        try:
            s.settimeout(0.5)
            try:
                s.sendall(b'ping')
                got = s.recv(16)
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                return
            self.assertEqual(got, b'', 'a new connection was relayed after SIGTERM')
        finally:
            s.close()

    def test_sigterm_stops_accepting_and_drains_open_connection(self):
        lb, port = self.start('10s')
        s = self.connect(port)
        self.assertTrue(echo_round(s, 256 * 1024, 1))
        s.sendall(b'mid-flight ')          # a byte in flight at SIGTERM
        lb.signal(signal.SIGTERM)
        self.assertEqual(harness.recv_exact(s, 11), b'mid-flight ')
        time.sleep(0.3)
        self.assert_not_served(port)
        for i in range(5):
            self.assertTrue(echo_round(s, 256 * 1024, 10 + i),
                            'open connection stopped relaying after SIGTERM')
            time.sleep(0.1)
        self.assertTrue(lb.running(), 'tcplb exited with a connection open')
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), b'')
        s.close()
        t0 = time.monotonic()
        rc = lb.wait(5)
        self.assertIsNotNone(rc, 'tcplb still running 5 s after its last '
                                 'connection closed (shutdown_timeout 10s)')
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 5)

    def test_shutdown_timeout_ends_lingering_connection_and_exits_0(self):
        lb, port = self.start('1s')
        s = self.connect(port)
        self.assertTrue(echo_round(s, 4096, 2))
        t0 = time.monotonic()
        lb.signal(signal.SIGTERM)
        rc = lb.wait(10)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(rc, 'tcplb still running 10 s after SIGTERM '
                                 'with shutdown_timeout = 1s')
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 5)
        self.assertGreater(elapsed, 0.5, 'did not wait for the open connection')
        s.settimeout(3)
        try:
            got = harness.recv_until_eof(s)
        except ConnectionResetError:
            got = b''
        self.assertEqual(got, b'')


if __name__ == '__main__':
    unittest.main()
