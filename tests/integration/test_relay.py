"""Relaying (docs/reference.md: Relaying and error answers): bytes unchanged both ways, half-close passed
on while the other direction flows, many connections at once, exact byte
counters (section 6)."""

import hashlib
import random
import socket
import threading
import unittest

import harness

MIB = 1 << 20


def pseudo_random(n, seed):
    return random.Random(seed).randbytes(n)


class RelayTest(harness.TcplbTestCase):

    def start_echo_lb(self, backend):
        cfg = self.config()
        port = cfg.listener('relay', pool='p', mode='tcp')
        cfg.pool('p', [('echo', backend)])
        lb = self.tcplb(cfg)
        return lb, port

    def test_8mib_each_way_is_byte_exact(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        lb, port = self.start_echo_lb(echo)
        data = pseudo_random(8 * MIB, 1)
        s = self.connect(port)
        errors = []

        def send():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                errors.append(e)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got = harness.recv_until_eof(s, limit=9 * MIB)
        sender.join(10)
        self.assertEqual(errors, [])
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got).hexdigest(),
                         hashlib.sha256(data).hexdigest(),
                         'server->client bytes differ')
        harness.wait_until(lambda: echo.received, 3)
        self.assertEqual(echo.received,
                         [(len(data), hashlib.sha256(data).hexdigest())],
                         'client->server bytes differ')

    def test_half_close_passes_fin_and_reply_still_flows(self):
        sink = self.backend(harness.SinkThenSendBackend, 'sink')
        cfg = self.config()
        port = cfg.listener('relay', pool='p', mode='tcp')
        cfg.pool('p', [('sink', sink)])
        self.tcplb(cfg)
        sent = pseudo_random(300 * 1024, 2)
        s = self.connect(port)
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)
        got = harness.recv_until_eof(s, limit=4 * MIB)
        expected = sink.expected_reply(sent)
        self.assertEqual(len(got), len(expected))
        self.assertTrue(got == expected, 'reply after half-close differs')
        self.assertEqual(sink.received,
                         [(len(sent), hashlib.sha256(sent).hexdigest())])

    def test_200_concurrent_connections_exact_and_counted(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        lb, port = self.start_echo_lb(echo)
        n, size = 200, 64 * 1024
        payloads = [pseudo_random(size, 1000 + i) for i in range(n)]
        got = harness.echo_concurrently(port, payloads, timeout=40)
        bad = [i for i in range(n) if got[i] != payloads[i]]
        self.assertEqual(bad, [], 'connections whose echo differs')
        total = n * size
        js = self.settled_stats(lb, lambda js: (
            harness.find_server(js, 'p', 'echo')['bytes_out'] == total and
            harness.find_server(js, 'p', 'echo')['bytes_in'] == total))
        srv = harness.find_server(js, 'p', 'echo')
        self.assertEqual((srv['bytes_in'], srv['bytes_out']), (total, total))
        self.assertEqual(srv['total'], n)
        self.assertEqual(srv['failed'], 0)
        self.assertEqual(srv['active'], 0)
        lst = harness.find_listener(js, 'relay')
        self.assertEqual((lst['total'], lst['rejected'], lst['active']), (n, 0, 0))
        self.assertEqual(echo.bytes, total)


if __name__ == '__main__':
    unittest.main()
