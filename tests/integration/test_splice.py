"""Adaptive splice() (docs/configuration.md `splice`, `splice_pipes`;
docs/observability.md `show info`): a bulk transfer, in either direction,
moves through a kernel pipe and arrives byte-exact, with the servers'
bytes_in / bytes_out still exact and `spliced_bytes` counting it; `splice =
off` and small request/response traffic never splice, and a connection goes
back to buffers (and gives its pipe back) once its bulk part is over; the
pipe limit holds (transfers past it use buffers and still arrive intact);
bytes parked in a pipe wait for a slow reader; a client that goes away while
its bytes sit in a pipe leaks no descriptor and leaves the pool usable; bad
values are refused with FILE:LINE; a reload switches splicing for new
connections while splice_pipes keeps its running value until a restart.

Every transfer is pseudo-random data compared by sha256. The backend sends
in 1 MiB pieces so that tcplb's 64 KiB reads fill up and the direction
switches to splice()."""

import hashlib
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time
import unittest

import harness

MIB = 1 << 20
RELAY_BUF = 64 * 1024   # WORKER_BUF_SIZE: a read filling it starts splicing,
                        # so each direction's first 64 KiB go through a buffer
INFO_TAIL = ['splice', 'splice_pipes', 'pipes_used', 'pipes_idle', 'spliced_bytes']


def pseudo_random(n, seed):
    return random.Random(seed).randbytes(n)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def open_fds(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def pipe_fds(pid):
    """How many of pid's descriptors are pipe ends."""
    n = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            if os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith('pipe:'):
                n += 1
        except FileNotFoundError:       # closed meanwhile
            pass
    return n


class BulkSendBackend(harness.Backend):
    """Sends `payload` (read at accept time, so a test may change it
    between connections) in `chunk`-byte sendall() pieces, then shuts down
    its write side and closes. Reads nothing."""

    def __init__(self, name, payload, chunk=MIB):
        self.payload = payload
        self.chunk = chunk
        super().__init__(name)

    def send_payload(self, conn):
        data = memoryview(self.payload)
        for off in range(0, len(data), self.chunk):
            conn.sendall(data[off:off + self.chunk])

    def serve(self, conn):
        self.send_payload(conn)
        conn.shutdown(socket.SHUT_WR)


class BulkThenEchoBackend(BulkSendBackend):
    """Sends `payload` like BulkSendBackend, then echoes what it receives
    until the peer's FIN."""

    def serve(self, conn):
        self.send_payload(conn)
        while True:
            got = conn.recv(65536)
            if not got:
                break
            conn.sendall(got)
        conn.shutdown(socket.SHUT_WR)


class SpliceTestCase(harness.TcplbTestCase):

    def start_bulk(self, payload, name='bulk', **global_keys):
        """A tcplb with listener `dl` in front of one BulkSendBackend
        (server p/bulk). Returns (lb, port, backend)."""
        bulk = self.backend(BulkSendBackend, name, payload)
        cfg = self.config(**global_keys)
        port = cfg.listener('dl', pool='p')
        cfg.pool('p', [(name, bulk)])
        lb = self.tcplb(cfg)
        return lb, port, bulk

    def client(self, port, rcvbuf=None):
        """A connected client socket; with rcvbuf, SO_RCVBUF is set before
        the connect so the window stays that small."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socks.append(s)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(harness.CLIENT_TIMEOUT)
        s.connect((harness.HOST, port))
        return s

    def download(self, port, size, rcvbuf=None):
        s = self.client(port, rcvbuf)
        try:
            return harness.recv_until_eof(s, limit=size + MIB)
        finally:
            s.close()

    def assert_same(self, got, expected, what):
        self.assertEqual(len(got), len(expected), '%s: length differs' % what)
        self.assertEqual(sha(got), sha(expected), '%s: bytes differ' % what)

    def settled_server(self, lb, server, bytes_out=None, bytes_in=None):
        """The server's entry once nothing is active and its byte counters
        reached the given values (or the last answer after 5 s)."""
        def done(js):
            srv = harness.find_server(js, 'p', server)
            return ((bytes_out is None or srv['bytes_out'] == bytes_out) and
                    (bytes_in is None or srv['bytes_in'] == bytes_in))
        return harness.find_server(self.settled_stats(lb, done, 5.0), 'p', server)

    def settled_info(self, lb, pred=None, timeout=5.0):
        """show info once no pipe is held and pred(info) holds, or the last
        answer after timeout."""
        last = [None]

        def probe():
            last[0] = harness.show_info(lb)
            return last[0]['pipes_used'] == 0 and (pred is None or pred(last[0]))
        harness.wait_until(probe, timeout, 0.02)
        return last[0]

    def assert_spliced_most(self, delta, size):
        """delta (what spliced_bytes grew by) covers most of the size bytes
        of one one-way transfer, but not its first 64 KiB (read into a
        buffer before splicing starts). Most, not all: whenever the sender
        falls behind, a splice() brings under 16 KiB and the direction goes
        back to buffers until a read fills one again. Unloaded, 99.6 % is
        spliced; with the CPUs busy, 85 % has been seen."""
        self.assertGreaterEqual(delta, size // 2,
                                'only %d of %d bytes went through splice()'
                                % (delta, size))
        self.assertLessEqual(delta, size - RELAY_BUF,
                             'spliced_bytes grew by %d of %d bytes relayed: '
                             'more than all but the first 64 KiB'
                             % (delta, size))


class SpliceRelayTest(SpliceTestCase):

    def test_download_is_spliced_byte_exact_and_counted(self):
        size = 32 * MIB
        payload = pseudo_random(size, 1)
        lb, port, bulk = self.start_bulk(payload)
        info0 = harness.show_info(lb)
        keys = list(info0)
        self.assertIn('splice', keys)
        at = keys.index('splice')
        self.assertEqual(keys[at:at + 5], INFO_TAIL, 'show info lacks the splice lines')
        self.assertEqual((info0['splice'], info0['splice_pipes'],
                          info0['pipes_used'], info0['pipes_idle'],
                          info0['spliced_bytes']), ('auto', 64, 0, 0, 0))
        pipes0 = pipe_fds(lb.pid)

        got = self.download(port, size)
        self.assert_same(got, payload, 'download')

        srv = self.settled_server(lb, 'bulk', bytes_out=size)
        self.assertEqual((srv['bytes_out'], srv['bytes_in'], srv['active']),
                         (size, 0, 0))
        info = self.settled_info(lb)
        self.assert_spliced_most(info['spliced_bytes'], size)
        self.assertEqual(info['pipes_used'], 0)
        # One direction spliced, one pipe at a time: it went back to the pool.
        self.assertEqual(info['pipes_idle'], 1)
        self.assertLessEqual(info['pipes_used'] + info['pipes_idle'],
                             info['splice_pipes'])
        self.assertEqual(pipe_fds(lb.pid), pipes0 + 2,
                         'the idle pipe should be the only new pipe')

    def test_upload_is_spliced_byte_exact_and_counted(self):
        size = 32 * MIB
        payload = pseudo_random(size, 2)
        sink = self.backend(harness.SinkThenSendBackend, 'sink', payload=b'')
        cfg = self.config()
        port = cfg.listener('ul', pool='p')
        cfg.pool('p', [('sink', sink)])
        lb = self.tcplb(cfg)

        s = self.client(port)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        reply = harness.recv_until_eof(s, limit=MIB)
        s.close()
        self.assertEqual(reply, hashlib.sha256(payload).digest(),
                         'the server received other bytes than were sent')
        harness.wait_until(lambda: sink.received, 3)
        self.assertEqual(sink.received, [(size, sha(payload))])

        srv = self.settled_server(lb, 'sink', bytes_in=size, bytes_out=32)
        self.assertEqual((srv['bytes_in'], srv['bytes_out']), (size, 32))
        info = self.settled_info(lb)
        self.assert_spliced_most(info['spliced_bytes'], size)
        self.assertEqual((info['pipes_used'], info['pipes_idle']), (0, 1))

    def test_small_exchanges_after_a_bulk_transfer_go_back_to_buffers(self):
        size, n, msg = 16 * MIB, 50, 1000
        payload = pseudo_random(size, 4)
        mixed = self.backend(BulkThenEchoBackend, 'mixed', payload)
        cfg = self.config()
        port = cfg.listener('mx', pool='p')
        cfg.pool('p', [('mixed', mixed)])
        lb = self.tcplb(cfg)

        s = self.client(port)
        self.assert_same(harness.recv_exact(s, size), payload, 'bulk part')
        # The connection stays open, but its pipe is empty: back in the pool.
        info = self.settled_info(lb, lambda i: i['pipes_idle'] == 1)
        self.assertEqual((info['pipes_used'], info['pipes_idle']), (0, 1),
                         'an empty pipe is still held by its connection')
        self.assertEqual(harness.find_listener(lb.stats_json(), 'mx')['active'], 1)
        for i in range(n):
            m = pseudo_random(msg, 100 + i)
            s.sendall(m)
            self.assertEqual(harness.recv_exact(s, msg), m, 'echo %d' % i)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), b'')
        s.close()
        srv = self.settled_server(lb, 'mixed', bytes_in=n * msg,
                                  bytes_out=size + n * msg)
        self.assertEqual((srv['bytes_in'], srv['bytes_out']),
                         (n * msg, size + n * msg))
        info = self.settled_info(lb)
        # The bulk part is spliced; once a splice() brings under 16 KiB the
        # direction is back on buffers, so at most one small answer more.
        self.assertGreaterEqual(info['spliced_bytes'], size // 2)
        self.assertLessEqual(info['spliced_bytes'], size - RELAY_BUF + msg,
                             'small answers still spliced after the bulk part')
        self.assertEqual((info['pipes_used'], info['pipes_idle']), (0, 1))

    def test_splice_off_uses_buffers_only(self):
        size = 16 * MIB
        payload = pseudo_random(size, 3)
        lb, port, bulk = self.start_bulk(payload, splice='off')
        pipes0 = pipe_fds(lb.pid)
        got = self.download(port, size)
        self.assert_same(got, payload, 'download with splice = off')
        srv = self.settled_server(lb, 'bulk', bytes_out=size)
        self.assertEqual(srv['bytes_out'], size)
        info = harness.show_info(lb)
        self.assertEqual((info['splice'], info['pipes_used'], info['pipes_idle'],
                          info['spliced_bytes']), ('off', 0, 0, 0))
        self.assertEqual(pipe_fds(lb.pid), pipes0, 'a pipe was opened')

    def test_small_keepalive_exchanges_keep_buffers(self):
        web = self.backend(harness.HttpBackend, 'web')
        cfg = self.config()
        port = cfg.listener('web', pool='p')
        cfg.pool('p', [('web', web)])
        lb = self.tcplb(cfg)

        n = 200
        answer = (b'HTTP/1.1 200 OK\r\nX-Backend: web\r\nContent-Type: '
                  b'text/plain\r\nContent-Length: 4\r\nConnection: '
                  b'keep-alive\r\n\r\nweb\n')     # what HttpBackend sends
        s = self.connect(port)
        for i in range(n):
            r = harness.http_request(port, '/r%d' % i, close=False, sock=s)
            self.assertEqual((r.status, r.headers.get('x-backend'), r.body),
                             (200, 'web', b'web\n'), 'request %d: %r' % (i, r))
        s.close()
        self.assertEqual(web.requests, n)
        request_len = sum(len('GET /r%d HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: '
                              'tcplb-it\r\nConnection: keep-alive\r\n\r\n'
                              % (i, harness.HOST, port)) for i in range(n))
        sizes_out = n * len(answer)
        srv = self.settled_server(lb, 'web', bytes_in=request_len,
                                  bytes_out=sizes_out)
        self.assertEqual((srv['bytes_in'], srv['bytes_out']),
                         (request_len, sizes_out))
        info = harness.show_info(lb)
        self.assertEqual((info['spliced_bytes'], info['pipes_used'],
                          info['pipes_idle']), (0, 0, 0),
                         'small exchanges went through splice()')


class SplicePipeLimitTest(SpliceTestCase):

    def test_pipe_limit_holds_and_transfers_past_it_stay_exact(self):
        size, n = 16 * MIB, 4
        payload = pseudo_random(size, 5)
        lb, port, bulk = self.start_bulk(payload, workers=1, splice_pipes=1)
        self.assertEqual(harness.show_info(lb)['splice_pipes'], 1)
        pipes0 = pipe_fds(lb.pid)

        results = [None] * n
        errors = []
        # Small receive windows and a slow start: each session has bytes
        # waiting toward its client for a while, so all four want a pipe at
        # the same time.
        socks = [self.client(port, rcvbuf=64 * 1024) for _ in range(n)]

        def fetch(i):
            try:
                got = bytearray()
                while len(got) < MIB:
                    data = socks[i].recv(64 * 1024)
                    if not data:
                        break
                    got += data
                    time.sleep(0.005)
                got += harness.recv_until_eof(socks[i], limit=size + MIB)
                results[i] = bytes(got)
                socks[i].close()
            except Exception as e:          # reported by the main thread
                errors.append((i, repr(e)))
        threads = [threading.Thread(target=fetch, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        samples = max_used = max_open = max_pipe_fds = 0
        used = []
        deadline = time.monotonic() + 30
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            info = harness.show_info(lb)
            used.append(info['pipes_used'])
            max_used = max(max_used, info['pipes_used'])
            max_open = max(max_open, info['pipes_used'] + info['pipes_idle'])
            max_pipe_fds = max(max_pipe_fds, pipe_fds(lb.pid) - pipes0)
            samples += 1
            time.sleep(0.01)
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        self.assertFalse(any(t.is_alive() for t in threads),
                         'downloads unfinished after 30 s')
        self.assertEqual(errors, [])
        for i in range(n):
            self.assert_same(results[i], payload, 'download %d' % i)

        srv = self.settled_server(lb, 'bulk', bytes_out=n * size)
        self.assertEqual((srv['bytes_out'], srv['total']), (n * size, n))
        self.assertGreater(samples, 0)
        self.assertLessEqual(max_used, 1, 'pipes_used over splice_pipes = 1: %s'
                             % used)
        self.assertLessEqual(max_open, 1, 'pipes open over splice_pipes = 1')
        self.assertLessEqual(max_pipe_fds, 2, 'more than one pipe opened')
        info = self.settled_info(lb)
        self.assertEqual((info['pipes_used'], info['pipes_idle']), (0, 1))
        self.assertGreater(info['spliced_bytes'], 0, 'the one pipe was never used')
        self.assertLessEqual(info['spliced_bytes'], n * (size - RELAY_BUF))
        self.assertEqual(pipe_fds(lb.pid), pipes0 + 2)


class SpliceParkedBytesTest(SpliceTestCase):

    def test_slow_reader_gets_bytes_parked_in_the_pipe(self):
        size = 16 * MIB
        payload = pseudo_random(size, 6)
        lb, port, bulk = self.start_bulk(payload)
        s = self.client(port, rcvbuf=64 * 1024)
        got = bytearray()
        used = []
        # Slowly: tcplb's writes to this client hit EAGAIN and the bytes
        # already spliced from the server wait in the pipe. At least 2 MiB,
        # and on until that was seen (a busy CPU can keep the direction on
        # buffers for a moment), but no more than 8 MiB.
        while len(got) < 2 * MIB or (1 not in used and len(got) < 8 * MIB):
            data = s.recv(64 * 1024)
            if not data:
                break
            got += data
            used.append(harness.show_info(lb)['pipes_used'])
            time.sleep(0.005)
        got += harness.recv_until_eof(s, limit=size + MIB)
        s.close()
        self.assert_same(bytes(got), payload, 'slow download')
        self.assertEqual(max(used), 1,
                         'no pipe held bytes while the client read slowly: %s'
                         % used)
        srv = self.settled_server(lb, 'bulk', bytes_out=size)
        self.assertEqual(srv['bytes_out'], size)
        info = self.settled_info(lb)
        self.assert_spliced_most(info['spliced_bytes'], size)
        self.assertEqual((info['pipes_used'], info['pipes_idle']), (0, 1))

    def test_client_gone_with_bytes_in_the_pipe_leaks_nothing(self):
        size = 64 * MIB
        payload = pseudo_random(MIB, 7) * 64
        lb, port, bulk = self.start_bulk(payload)
        harness.show_info(lb)
        fds0, pipes0 = open_fds(lb.pid), pipe_fds(lb.pid)

        s = self.client(port, rcvbuf=64 * 1024)
        head = harness.recv_exact(s, 2 * MIB)
        self.assertEqual(head, payload[:2 * MIB])
        # The client stops reading: bytes pile up in the pipe. If the
        # direction happened to be on buffers just then (a busy CPU), the
        # bytes wait in a buffer instead: read on a little and stall again.
        received = len(head)
        deadline = time.monotonic() + 8
        while True:
            held = harness.wait_until(lambda: harness.show_info(lb)['pipes_used'] == 1,
                                      0.5, 0.02)
            if held or received >= 32 * MIB or time.monotonic() > deadline:
                break
            received += len(harness.recv_exact(s, 256 * 1024))
        self.assertTrue(held, 'no pipe holds bytes for the stalled client: %s'
                        % harness.show_info(lb))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()                                           # RST

        def ended():
            js = lb.stats_json()
            info = harness.show_info(lb)
            return (harness.all_idle(js) and info['pipes_used'] == 0 and
                    open_fds(lb.pid) <= fds0 + 2 * info['pipes_idle'])
        harness.wait_until(ended, 5.0, 0.05)
        self.assertTrue(lb.running(), 'tcplb exited')
        js = lb.stats_json()
        self.assertEqual(harness.find_listener(js, 'dl')['active'], 0)
        srv = harness.find_server(js, 'p', 'bulk')
        self.assertEqual(srv['active'], 0)
        self.assertGreaterEqual(srv['bytes_out'], 2 * MIB)
        self.assertLess(srv['bytes_out'], size)
        info = harness.show_info(lb)
        self.assertEqual(info['pipes_used'], 0)
        # The pipe still held bytes: closed, not put back in the pool.
        self.assertEqual(info['pipes_idle'], 0, info)
        self.assertLessEqual(open_fds(lb.pid), fds0 + 2 * info['pipes_idle'],
                             'descriptors leaked: %d before, %d now, %d idle pipes'
                             % (fds0, open_fds(lb.pid), info['pipes_idle']))
        self.assertEqual(pipe_fds(lb.pid), pipes0, 'a pipe was leaked')

        # The pool still works.
        spliced0 = info['spliced_bytes']
        size2 = 16 * MIB
        bulk.payload = pseudo_random(size2, 8)
        got = self.download(port, size2)
        self.assert_same(got, bulk.payload, 'download after the reset')
        info = self.settled_info(lb)
        self.assert_spliced_most(info['spliced_bytes'] - spliced0, size2)
        self.assertEqual((info['pipes_used'], info['pipes_idle']), (0, 1))
        self.assertEqual(pipe_fds(lb.pid), pipes0 + 2)


class SpliceConfigTest(SpliceTestCase):

    def config_text(self, **global_keys):
        cfg = self.config(**global_keys)
        cfg.listener('dl', pool='p')
        cfg.pool('p', [('a', '%s:%d' % (harness.HOST, harness.dead_port()))])
        return cfg.text()

    def check(self, text):
        path = os.path.join(self.tmp, 'check.ini')
        with open(path, 'w') as f:
            f.write(text)
        proc = subprocess.run([harness.require_bin(), '-c', '-f', path],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=10)
        return path, proc

    def test_bad_splice_values_are_refused_with_file_line_and_key(self):
        for key, value in (('splice', 'maybe'), ('splice', ''),
                           ('splice_pipes', '-1'), ('splice_pipes', '100001'),
                           ('splice_pipes', 'many')):
            with self.subTest(key=key, value=value):
                text = self.config_text(**{key: value})
                want = '%s = %s' % (key, value)
                line = [ln.rstrip() for ln in text.split('\n')].index(want.rstrip()) + 1
                path, proc = self.check(text)
                self.assertNotEqual(proc.returncode, 0, 'accepted: %s' % proc.stderr)
                self.assertRegex(proc.stderr, re.compile(
                    r'^%s:%d: .*\b%s\b' % (re.escape(path), line, key), re.M))

    def test_good_splice_values_are_accepted(self):
        for keys in ({'splice': 'auto'}, {'splice': 'off'},
                     {'splice_pipes': '0'}, {'splice_pipes': '100000'}):
            with self.subTest(**keys):
                path, proc = self.check(self.config_text(**keys))
                self.assertEqual(proc.returncode, 0, proc.stderr)


class SpliceReloadTest(SpliceTestCase):

    def test_reload_switches_splice_but_not_splice_pipes(self):
        size = 16 * MIB
        bulk = self.backend(BulkSendBackend, 'bulk', pseudo_random(size, 9))
        port = harness.free_port()

        def config(**keys):
            cfg = self.config(**keys)
            cfg.listener('dl', pool='p', port=port)
            cfg.pool('p', [('bulk', bulk)])
            return cfg
        lb = self.tcplb(config(splice='auto'))

        def spliced_by_download(seed):
            before = self.settled_info(lb)['spliced_bytes']
            bulk.payload = pseudo_random(size, seed)
            self.assert_same(self.download(port, size), bulk.payload,
                             'download %d' % seed)
            return self.settled_info(lb)['spliced_bytes'] - before

        self.assert_spliced_most(spliced_by_download(10), size)

        self.reload(lb, config(splice='off'))
        self.assertEqual(harness.show_info(lb)['splice'], 'off')
        self.assertEqual(spliced_by_download(11), 0,
                         'spliced after a reload to splice = off')

        self.assertNotIn('splice_pipes changed', harness.tcplb_output(lb))
        self.reload(lb, config(splice='auto', splice_pipes=8))
        self.assertIn('splice_pipes changed', harness.tcplb_output(lb))
        info = harness.show_info(lb)
        self.assertEqual((info['splice'], info['splice_pipes']), ('auto', 64))
        self.assert_spliced_most(spliced_by_download(12), size)
        srv = self.settled_server(lb, 'bulk', bytes_out=3 * size)
        self.assertEqual(srv['bytes_out'], 3 * size)


if __name__ == '__main__':
    unittest.main()
