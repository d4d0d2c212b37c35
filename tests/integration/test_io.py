"""io = io_uring (docs/performance.md: The io_uring data path;
docs/configuration.md: io): established connections relay through each
worker's io_uring with the same bytes, counters and half-closes as epoll;
a reader that does not read holds at most a few of the worker's shared
buffers (the rest waits in the kernel's socket buffers); no buffer is lost
when connections end; a bulk transfer moves to epoll's splice() without
losing a byte; mode http's observer counts the same requests and a
server that closes unanswered still gets a 502. Where the kernel or a
seccomp filter refuses io_uring, tcplb says why once per worker and relays
with epoll. `make test` also runs the relay tests again with io_uring
(TCPLB_TEST_IO, tests/run_all.sh)."""

import hashlib
import os
import platform
import random
import socket
import sys
import time
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
QUEUE = 2               # SESSION_RING_QUEUE in src/session_uring.c


class IoUringTest(harness.TcplbTestCase):

    def start(self, backend, mode='tcp', wrapper=None, **global_keys):
        global_keys.setdefault('io', 'io_uring')
        cfg = self.config(**global_keys)
        port = cfg.listener('l', pool='p', mode=mode)
        cfg.pool('p', [('s', backend)])
        lb = self.tcplb(cfg, start=False)
        if wrapper:
            lb.wrapper = wrapper + lb.wrapper
        lb.start()
        harness.wait_started(lb)
        return lb, port

    def ring_or_skip(self, lb):
        """The workers relay on io_uring; a kernel without it skips (the
        fallback test below still runs)."""
        i = harness.show_info(lb)
        if 'io_uring_error' in i:
            self.skipTest('no io_uring here: %s' % i['io_uring_error'])
        self.assertEqual(i['io'], 'io_uring', i)
        self.assertEqual(i['io_uring_workers'], 2, i)
        return i

    def test_ring_relays_byte_exact_both_ways_and_counts_once(self):
        echo = self.backend(harness.EchoBackend)
        lb, port = self.start(echo, splice='off')   # every byte on the ring
        before = self.ring_or_skip(lb)
        rng = random.Random(17)
        sizes = [1, 100, 1500, 65535, 65536, 65537, 200000, 3 << 20] + \
            [rng.randrange(1, 600000) for _ in range(12)]
        payloads = [rng.randbytes(n) for n in sizes]
        got = harness.echo_concurrently(port, payloads)
        for i, (p, g) in enumerate(zip(payloads, got)):
            self.assertEqual(len(g), len(p), 'connection %d' % i)
            self.assertEqual(hashlib.sha256(g).digest(), hashlib.sha256(p).digest(),
                             'connection %d' % i)
        total = sum(sizes)
        js = self.settled_stats(lb)
        srv = harness.find_server(js, 'p', 's')
        self.assertEqual((srv['total'], srv['bytes_in'], srv['bytes_out']),
                         (len(sizes), total, total))
        after = harness.show_info(lb)
        self.assertGreater(after['io_uring_completions'], before['io_uring_completions'])
        # what the kernel filled went back: no buffer is held once idle
        self.assertEqual(after['io_uring_buffers'], 0, after)
        self.assertEqual(after['spliced_bytes'], 0, after)   # buffers only

    def test_slow_reader_holds_few_buffers_then_gets_every_byte(self):
        payload = hashlib.sha256(b'ring').digest() * (1 << 19)       # 16 MiB
        sink = self.backend(harness.SinkThenSendBackend, payload=payload)
        lb, port = self.start(sink, splice='off')
        self.ring_or_skip(lb)
        s = self.connect(port)
        sent = b'x' * 100000
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)       # the half-close reaches the server
        self.assertTrue(harness.wait_until(lambda: len(sink.received) == 1, 5))
        self.assertEqual(sink.received[0][0], len(sent))
        time.sleep(0.5)                  # the server pushes; nobody reads
        held = harness.show_info(lb)['io_uring_buffers']
        self.assertGreater(held, 0)
        self.assertLessEqual(held, 2 * QUEUE)
        got = harness.recv_until_eof(s)
        self.assertEqual(got, sink.expected_reply(sent))
        s.close()
        js = self.settled_stats(lb)
        srv = harness.find_server(js, 'p', 's')
        self.assertEqual((srv['bytes_in'], srv['bytes_out']), (len(sent), len(got)))
        self.assertEqual(harness.show_info(lb)['io_uring_buffers'], 0)

    def test_client_gone_mid_transfer_frees_its_buffers(self):
        payload = b'z' * (32 << 20)
        sink = self.backend(harness.SinkThenSendBackend, payload=payload)
        lb, port = self.start(sink, splice='off')
        self.ring_or_skip(lb)
        s = self.connect(port)
        s.sendall(b'go')
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(harness.wait_until(
            lambda: harness.show_info(lb)['io_uring_buffers'] > 0, 5))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
        s.close()                        # a reset, with buffers in flight
        ok = harness.wait_until(lambda: harness.show_info(lb)['active'] == 0, 5)
        i = harness.show_info(lb)
        self.assertTrue(ok, i)
        self.assertEqual(i['io_uring_buffers'], 0, i)
        # the log writer thread flushes the line a moment later
        self.assertTrue(harness.wait_until(lambda: harness.access_log_lines(lb), 3))
        self.assertIn('term=client_reset', harness.access_log_lines(lb)[-1])

    def test_bulk_transfer_moves_to_splice_byte_exact(self):
        """A full buffer means bulk: the session finishes what is in flight
        on the ring and goes on with epoll and splice(); not a byte is lost
        or doubled across the move, in either direction, and small
        exchanges on other connections stay on the ring."""
        echo = self.backend(harness.EchoBackend)
        lb, port = self.start(echo)
        self.ring_or_skip(lb)
        rng = random.Random(5)
        payloads = [rng.randbytes(n) for n in (8 << 20, 3 << 20, 65536 * 3 + 7, 10, 2000)]
        got = harness.echo_concurrently(port, payloads)
        for i, (p, g) in enumerate(zip(payloads, got)):
            self.assertEqual(len(g), len(p), 'connection %d' % i)
            self.assertEqual(hashlib.sha256(g).digest(), hashlib.sha256(p).digest(),
                             'connection %d' % i)
        js = self.settled_stats(lb)
        srv = harness.find_server(js, 'p', 's')
        total = sum(len(p) for p in payloads)
        self.assertEqual((srv['bytes_in'], srv['bytes_out']), (total, total))
        i = harness.show_info(lb)
        self.assertGreater(i['spliced_bytes'], 0, i)
        self.assertEqual((i['io_uring_buffers'], i['pipes_used']), (0, 0), i)

    def test_http_observer_counts_on_the_ring(self):
        web = self.backend(harness.HttpBackend, 'a')
        lb, port = self.start(web, mode='http')
        self.ring_or_skip(lb)
        s = self.connect(port)
        for _ in range(50):
            r = harness.http_request(port, close=False, sock=s)
            self.assertEqual((r.status, r.body), (200, b'a\n'))
        s.close()
        js = self.settled_stats(lb, lambda j: harness.find_server(j, 'p', 's')['requests'] == 50)
        srv = harness.find_server(js, 'p', 's')
        self.assertEqual((srv['requests'], srv['responses']['2xx']), (50, 50))

    def test_server_closing_unanswered_is_a_502_from_the_ring(self):
        closer = self.backend(harness.CloseBeforeReplyBackend)
        lb, port = self.start(closer, mode='http')
        self.ring_or_skip(lb)
        r = harness.http_request(port)
        self.assertEqual(r.status, 502)
        js = self.settled_stats(lb)
        self.assertEqual(harness.find_listener(js, 'l')['http_502'], 1)
        self.assertEqual(harness.show_info(lb)['io_uring_buffers'], 0)

    @unittest.skipUnless(platform.machine() == 'x86_64', 'the seccomp filter is x86-64')
    def test_refused_io_uring_falls_back_to_epoll_and_says_why(self):
        echo = self.backend(harness.EchoBackend)
        lb, port = self.start(echo, wrapper=[sys.executable,
                                             os.path.join(HERE, 'seccomp_refuse.py')])
        i = harness.show_info(lb)
        self.assertEqual(i['io'], 'io_uring', i)
        self.assertEqual(i['io_uring_workers'], 0, i)
        self.assertIn('io_uring_setup', i.get('io_uring_error', ''), i)
        out = harness.tcplb_output(lb)
        self.assertEqual(out.count('io = io_uring unavailable'), 2, out)   # once per worker
        payloads = [os.urandom(n) for n in (10, 70000, 1 << 20)]
        self.assertEqual(harness.echo_concurrently(port, payloads), payloads)

    def test_epoll_is_named_and_uses_no_ring(self):
        echo = self.backend(harness.EchoBackend)
        lb, port = self.start(echo, io='epoll')
        self.assertEqual(harness.echo_concurrently(port, [b'abc' * 1000]), [b'abc' * 1000])
        i = harness.show_info(lb)
        self.assertEqual((i['io'], i['io_uring_workers'], i['io_uring_completions']),
                         ('epoll', 0, 0), i)
        self.assertNotIn('io_uring_error', i)


if __name__ == '__main__':
    unittest.main()
