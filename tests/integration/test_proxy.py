"""PROXY protocol end to end: `send-proxy` / `send-proxy-v2` on servers and
`accept_proxy = yes` on listeners (docs/configuration.md).

Two tcplb processes are chained where it helps: A (send-proxy*) in front of
B (accept_proxy) in front of an HTTP backend, so B's access log and
`show clients` must name the client that connected to A. Headers are also
written by hand on raw sockets (whole, split with pauses, malformed, absent)
to check what B accepts, what it counts in `proxy_errors`, and that the
header never reaches the backend or `bytes_in`. A recording backend checks
the exact bytes tcplb sends with `send-proxy-v2` / `send-proxy`."""

import os
import re
import socket
import struct
import time

import harness

V2_SIG = b'\r\n\r\n\x00\r\nQUIT\n'


def v1_header(src, sport, dst, dport):
    return ('PROXY TCP4 %s %s %d %d\r\n' % (src, dst, sport, dport)).encode()


def v2_header(src, sport, dst, dport, tlvs=b''):
    """A v2 PROXY/TCP4 header; tlvs are appended after the addresses."""
    body = (socket.inet_aton(src) + socket.inet_aton(dst) +
            struct.pack('!HH', sport, dport) + tlvs)
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack('!H', len(body)) + body


def tlv(kind, value):
    return bytes([kind]) + struct.pack('!H', len(value)) + value


def http_get(port, path='/'):
    return ('GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: tcplb-it\r\n'
            'Connection: close\r\n\r\n' % (path, harness.HOST, port)).encode()


def recv_all_or_reset(sock):
    """Everything until EOF; a reset counts as the end (tcplb closing a
    socket with unread bytes in it resets the connection)."""
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return b''.join(chunks)
        if not data:
            return b''.join(chunks)
        chunks.append(data)


class RecordingBackend(harness.Backend):
    """Keeps every byte each connection sent, until the peer's FIN, then
    answers `ok` and closes. `received` lists the byte strings in order."""

    def __init__(self, name='recorder'):
        self.received = []
        super().__init__(name)

    def serve(self, conn):
        buf = bytearray()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
        with self.lock:
            self.received.append(bytes(buf))
        conn.sendall(b'ok')
        conn.shutdown(socket.SHUT_WR)


class ProxyTestCase(harness.TcplbTestCase):

    def sub_config(self, name, **global_keys):
        """A Config whose stats socket and access log live in their own
        subdirectory, so several tcplb processes can run in one test."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        return harness.Config(d, **global_keys)

    def start_b(self, backend):
        """tcplb B: listener `in` (mode http, accept_proxy) over backend."""
        cfg = self.sub_config('b')
        port = cfg.listener('in', pool='web', mode='http', accept_proxy='yes')
        cfg.pool('web', [('app', backend)])
        return self.tcplb(cfg), port

    def log_lines(self, lb, pred, n, timeout=3.0):
        """Waits until at least n access log lines satisfy pred; returns
        those lines (all of them, so a test can also check the exact count)."""
        def probe():
            got = [ln for ln in harness.access_log_lines(lb) if pred(ln)]
            return got if len(got) >= n else None
        got = harness.wait_until(probe, timeout)
        if got is None:
            self.fail('fewer than %d matching access log lines:\n%s'
                      % (n, '\n'.join(harness.access_log_lines(lb))))
        return got

    @staticmethod
    def field(line, key):
        m = re.search(r'(?:^| )%s=(\S+)' % re.escape(key), line)
        return m.group(1) if m else None

    def show_clients_ips(self, lb):
        text = lb.stats('show clients')
        return [ln.split(' ')[0] for ln in text.split('\n') if ln]


# ------------------------------------------------------------ A -> B chain

class ProxyChainTest(ProxyTestCase):
    """Client -> A (send-proxy / send-proxy-v2) -> B (accept_proxy) -> app."""

    def setUp(self):
        super().setUp()
        self.app = self.backend(harness.HttpBackend, 'app')
        self.b, self.b_port = self.start_b(self.app)
        cfg = self.sub_config('a')
        self.v1_port = cfg.listener('v1', pool='via_v1', mode='http')
        self.v2_port = cfg.listener('v2', pool='via_v2', mode='http')
        b_addr = '%s:%d' % (harness.HOST, self.b_port)
        cfg.pool('via_v1', [('b', b_addr, 'send-proxy')])
        cfg.pool('via_v2', [('b', b_addr, 'send-proxy-v2')])
        self.a = self.tcplb(cfg)

    def request_from(self, port, source):
        """One GET through A from source; returns the client's own port."""
        s = self.connect(port, source=source)
        cport = s.getsockname()[1]
        r = harness.http_request(port, sock=s)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get('x-backend'), 'app', r)
        s.close()
        return cport

    def check_chain(self, port):
        c7 = self.request_from(port, '127.0.0.7')
        c8 = self.request_from(port, '127.0.0.8')
        lines = self.log_lines(self.b, lambda ln: 'term=ok' in ln, 2)
        clients = sorted(self.field(ln, 'client') for ln in lines)
        self.assertEqual(clients, sorted(['127.0.0.7:%d' % c7, '127.0.0.8:%d' % c8]),
                         '\n'.join(lines))
        ips = self.show_clients_ips(self.b)
        self.assertIn('127.0.0.7', ips, ips)
        self.assertIn('127.0.0.8', ips, ips)
        self.assertNotIn('127.0.0.1', ips, 'B saw A instead of the client: %s' % ips)
        js = self.settled_stats(self.b)
        self.assertEqual(harness.find_listener(js, 'in')['proxy_errors'], 0)

    def test_send_proxy_v1_gives_b_the_client_address(self):
        self.check_chain(self.v1_port)

    def test_send_proxy_v2_gives_b_the_client_address(self):
        self.check_chain(self.v2_port)


# ------------------------------------------------------------ hand-made headers

class AcceptProxyTest(ProxyTestCase):

    def setUp(self):
        super().setUp()
        self.app = self.backend(harness.HttpBackend, 'app')
        self.b, self.port = self.start_b(self.app)

    def send_and_read(self, chunks, pause=0.0):
        """Sends chunks (with pause seconds between them) on a new connection
        and reads the answer to EOF; returns (status, raw answer bytes)."""
        s = self.connect(self.port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, c in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            s.sendall(c)
        raw = harness.recv_until_eof(s)
        s.close()
        m = re.match(rb'HTTP/1\.1 (\d{3}) ', raw)
        self.assertTrue(m, 'not an HTTP answer: %r' % raw[:200])
        self.assertTrue(raw.endswith(b'\r\n\r\napp\n'), raw[-200:])
        return int(m.group(1)), raw

    def check_logged(self, client, request, n=1):
        """The n-th ok line names client and counts exactly the request."""
        lines = self.log_lines(self.b, lambda ln: 'term=ok' in ln, n)
        self.assertEqual(len(lines), n, lines)
        line = lines[-1]
        self.assertEqual(self.field(line, 'client'), client, line)
        self.assertEqual(int(self.field(line, 'bytes_in')), len(request), line)
        return line

    def test_v1_header_and_request_in_one_write(self):
        req = http_get(self.port, '/one-write')
        hdr = v1_header('10.9.8.7', 5555, harness.HOST, self.port)
        status, raw = self.send_and_read([hdr + req])
        self.assertEqual(status, 200, raw)
        line = self.check_logged('10.9.8.7:5555', req)
        self.assertEqual(int(self.field(line, 'bytes_out')), len(raw), line)
        self.assertIn('10.9.8.7', self.show_clients_ips(self.b))

    def test_v2_header_with_tlvs_and_request_in_one_write(self):
        req = http_get(self.port, '/v2')
        tlvs = tlv(0x02, b'example.com') + tlv(0x04, b'\x00' * 5) + tlv(0xE0, b'x')
        hdr = v2_header('10.9.8.7', 5555, harness.HOST, self.port, tlvs)
        status, raw = self.send_and_read([hdr + req])
        self.assertEqual(status, 200, raw)
        self.check_logged('10.9.8.7:5555', req)

    def test_v1_header_split_across_writes(self):
        req = http_get(self.port, '/split-v1')
        hdr = v1_header('10.9.8.6', 4444, harness.HOST, self.port)
        # cut inside "PROXY", inside an address, between CR and LF
        cr = hdr.index(b'\r')
        chunks = [hdr[:3], hdr[3:15], hdr[15:cr + 1], hdr[cr + 1:], req]
        status, raw = self.send_and_read(chunks, pause=0.2)
        self.assertEqual(status, 200, raw)
        self.check_logged('10.9.8.6:4444', req)

    def test_v2_header_split_across_writes(self):
        req = http_get(self.port, '/split-v2')
        hdr = v2_header('10.9.8.5', 3333, harness.HOST, self.port,
                        tlv(0x02, b'example.com'))
        # inside the signature, inside the fixed part, inside the addresses,
        # inside the TLV, then the last header byte together with the request
        chunks = [hdr[:5], hdr[5:14], hdr[14:20], hdr[20:35], hdr[35:-1],
                  hdr[-1:] + req]
        status, raw = self.send_and_read(chunks, pause=0.2)
        self.assertEqual(status, 200, raw)
        self.check_logged('10.9.8.5:3333', req)

    def test_v2_local_keeps_the_connection_address(self):
        req = http_get(self.port, '/local')
        hdr = V2_SIG + bytes([0x20, 0x00, 0x00, 0x00])
        s = self.connect(self.port)
        me = '%s:%d' % s.getsockname()
        s.sendall(hdr + req)
        r = harness.read_http_response(s, expect_eof=True)
        s.close()           # the session (and its log line) ends with it
        self.assertEqual(r.status, 200, r)
        self.check_logged(me, req)

    def test_v1_unknown_keeps_the_connection_address(self):
        req = http_get(self.port, '/unknown')
        s = self.connect(self.port)
        me = '%s:%d' % s.getsockname()
        s.sendall(b'PROXY UNKNOWN\r\n' + req)
        r = harness.read_http_response(s, expect_eof=True)
        s.close()           # the session (and its log line) ends with it
        self.assertEqual(r.status, 200, r)
        self.check_logged(me, req)

    # -- rejections

    def expect_closed_without_a_byte(self, send, wait_for=6.0):
        """Opens a connection, sends send (if any) and returns (bytes read
        until EOF, seconds until EOF)."""
        s = self.connect(self.port)
        t0 = time.monotonic()
        if send:
            s.sendall(send)
        s.settimeout(wait_for)
        got = recv_all_or_reset(s)
        elapsed = time.monotonic() - t0
        s.close()
        self.assertEqual(got, b'', 'bytes back for %r' % send[:60])
        return elapsed

    def test_missing_malformed_and_silent_headers_are_closed_and_counted(self):
        before = self.app.connections
        req = http_get(self.port, '/no-header')
        # no header at all: an HTTP request straight away
        t = self.expect_closed_without_a_byte(req)
        self.assertLess(t, 2.0, 'no header: closed only after %.1fs' % t)
        # a malformed header (octet 256) followed by a request
        bad = b'PROXY TCP4 1.2.3.256 127.0.0.1 5555 80\r\n' + req
        t = self.expect_closed_without_a_byte(bad)
        self.assertLess(t, 2.0, 'malformed header: closed only after %.1fs' % t)
        # nothing at all: closed by the 3 s header timer, well before 6 s
        t = self.expect_closed_without_a_byte(b'')
        self.assertGreater(t, 2.5, 'silent connection closed after %.1fs' % t)
        self.assertLess(t, 4.5, 'silent connection closed after %.1fs' % t)

        js = self.settled_stats(
            self.b, lambda js: harness.find_listener(js, 'in')['proxy_errors'] >= 3)
        lst = harness.find_listener(js, 'in')
        self.assertEqual(lst['proxy_errors'], 3, lst)
        self.assertTrue(lst['accept_proxy'], lst)
        lines = self.log_lines(self.b, lambda ln: 'term=bad_proxy' in ln, 3)
        self.assertEqual(len(lines), 3, lines)
        for ln in lines:
            self.assertTrue(self.field(ln, 'client').startswith('127.0.0.1:'), ln)
            self.assertEqual(self.field(ln, 'bytes_in'), '0', ln)
        self.assertEqual(self.app.connections, before,
                         'a rejected connection reached the backend')

        # and B keeps serving
        req = http_get(self.port, '/after')
        status, raw = self.send_and_read(
            [v1_header('10.9.8.4', 2222, harness.HOST, self.port) + req])
        self.assertEqual(status, 200, raw)
        self.check_logged('10.9.8.4:2222', req)
        js = self.settled_stats(self.b)
        self.assertEqual(harness.find_listener(js, 'in')['proxy_errors'], 3)

    def test_header_trickled_slower_than_the_timer_is_rejected(self):
        """The 3 s header timer runs from accept: a client sending one byte
        every 0.4 s cannot hold the connection open past it."""
        hdr = v1_header('10.9.8.3', 1111, harness.HOST, self.port)
        s = self.connect(self.port)
        t0 = time.monotonic()
        closed_at = None
        for b in hdr:
            try:
                s.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
            time.sleep(0.4)
        if closed_at is None:
            s.settimeout(3.0)
            self.assertEqual(recv_all_or_reset(s), b'')
            closed_at = time.monotonic() - t0
        self.assertLess(closed_at, 4.5, 'trickling client held on %.1fs' % closed_at)
        js = self.settled_stats(
            self.b, lambda js: harness.find_listener(js, 'in')['proxy_errors'] >= 1)
        self.assertEqual(harness.find_listener(js, 'in')['proxy_errors'], 1)
        self.assertEqual(self.app.connections, 0)

    def test_each_kind_of_malformed_header_is_rejected(self):
        cases = [
            b'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
            b'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n',
            b'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n',
            b'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
            b'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n',
            b'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX',
            b'PROXY UNKNOWN ' + b'x' * 200 + b'\r\n',
            V2_SIG + bytes([0x11, 0x11, 0x00, 0x0C]) + b'\x00' * 12,   # version 1
            V2_SIG + bytes([0x22, 0x11, 0x00, 0x0C]) + b'\x00' * 12,   # command 2
            V2_SIG + bytes([0x21, 0x41, 0x00, 0x0C]) + b'\x00' * 12,   # family 0x41
            V2_SIG + bytes([0x21, 0x11, 0x00, 0x0B]) + b'\x00' * 11,   # too short
            V2_SIG + bytes([0x21, 0x11, 0x02, 0x09]),                  # 521 > max
        ]
        for i, hdr in enumerate(cases):
            t = self.expect_closed_without_a_byte(hdr + http_get(self.port))
            self.assertLess(t, 2.0, 'case %d closed only after %.1fs' % (i, t))
        js = self.settled_stats(
            self.b, lambda js: harness.find_listener(js, 'in')['proxy_errors'] >= len(cases))
        self.assertEqual(harness.find_listener(js, 'in')['proxy_errors'], len(cases))
        self.assertEqual(self.app.connections, 0)


# ------------------------------------------------------------ bytes sent to a server

class SendProxyBytesTest(ProxyTestCase):

    def start_sender(self, option):
        self.rec = self.backend(RecordingBackend, 'rec')
        cfg = self.sub_config('c')
        self.port = cfg.listener('out', pool='p', mode='tcp')
        cfg.pool('p', [('rec', self.rec, option)])
        self.lb = self.tcplb(cfg)

    def send_from(self, source, payload):
        s = self.connect(self.port, source=source)
        cport = s.getsockname()[1]
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), b'ok')
        s.close()
        got = harness.wait_until(lambda: list(self.rec.received), 3.0)
        self.assertEqual(len(got), 1, got)
        return cport, got[0]

    # client bytes that look like headers or contain every byte value must
    # pass unchanged after tcplb's own header
    PAYLOAD = (b'PROXY TCP4 6.6.6.6 6.6.6.6 1 1\r\n' + V2_SIG + bytes(range(256)) * 64)

    def test_send_proxy_v2_bytes_are_exact(self):
        self.start_sender('send-proxy-v2')
        cport, got = self.send_from('127.0.0.9', self.PAYLOAD)
        want = (V2_SIG + bytes([0x21, 0x11, 0x00, 0x0C]) +
                socket.inet_aton('127.0.0.9') + socket.inet_aton(harness.HOST) +
                struct.pack('!HH', cport, self.port))
        self.assertEqual(got[:len(want)], want)
        self.assertEqual(len(got), len(want) + len(self.PAYLOAD))
        self.assertTrue(got[len(want):] == self.PAYLOAD, 'client bytes changed')

    def test_send_proxy_v1_bytes_are_exact(self):
        self.start_sender('send-proxy')
        cport, got = self.send_from('127.0.0.9', self.PAYLOAD)
        want = v1_header('127.0.0.9', cport, harness.HOST, self.port)
        self.assertEqual(got[:len(want)], want)
        self.assertEqual(len(got), len(want) + len(self.PAYLOAD))
        self.assertTrue(got[len(want):] == self.PAYLOAD, 'client bytes changed')

    def test_header_alone_when_the_client_sends_nothing(self):
        self.start_sender('send-proxy-v2')
        cport, got = self.send_from('127.0.0.9', b'')
        want = (V2_SIG + bytes([0x21, 0x11, 0x00, 0x0C]) +
                socket.inet_aton('127.0.0.9') + socket.inet_aton(harness.HOST) +
                struct.pack('!HH', cport, self.port))
        self.assertEqual(got, want)


    def test_accepted_header_is_relayed_with_send_proxy_v2(self):
        """accept_proxy + send-proxy-v2: the server hears the address from
        the incoming header (not the balancer in front), and the incoming
        header itself is stripped, even with a payload much larger than
        PROXY_HEADER_MAX arriving in the same write."""
        self.rec = self.backend(RecordingBackend, 'rec')
        cfg = self.sub_config('c')
        self.port = cfg.listener('relay', pool='p', mode='tcp', accept_proxy='yes')
        cfg.pool('p', [('rec', self.rec, 'send-proxy-v2')])
        self.lb = self.tcplb(cfg)
        incoming = v2_header('10.9.8.7', 5555, '192.0.2.80', 443,
                             tlv(0x02, b'example.com'))
        s = self.connect(self.port)
        s.sendall(incoming + self.PAYLOAD)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), b'ok')
        s.close()
        got = harness.wait_until(lambda: list(self.rec.received), 3.0)
        self.assertEqual(len(got), 1, got)
        want = (V2_SIG + bytes([0x21, 0x11, 0x00, 0x0C]) +
                socket.inet_aton('10.9.8.7') + socket.inet_aton('192.0.2.80') +
                struct.pack('!HH', 5555, 443))
        self.assertEqual(got[0][:len(want)], want)
        self.assertEqual(len(got[0]), len(want) + len(self.PAYLOAD))
        self.assertTrue(got[0][len(want):] == self.PAYLOAD, 'client bytes changed')


# ------------------------------------------------------------ health checks

class SendProxyHealthCheckTest(ProxyTestCase):
    """A server that requires the PROXY header (send-proxy*) must also get
    one with active health checks, as HAProxy does by default: nginx
    `listen ... proxy_protocol` or a tcplb with accept_proxy rejects a bare
    `GET /health`, and the server would be marked down although it works."""

    def check_health_through(self, option):
        app = self.backend(harness.SwitchableHttpBackend, 'app')
        b, b_port = self.start_b(app)
        cfg = self.sub_config('a')
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('b', '%s:%d' % (harness.HOST, b_port), option)],
                 health='http', health_interval='200ms', health_timeout='200ms',
                 rise=1, fall=1)
        a = self.tcplb(cfg)
        harness.wait_until(lambda: len(app.checks) >= 3, 3.0)
        js = b.stats_json()
        self.assertEqual(harness.find_listener(js, 'in')['proxy_errors'], 0,
                         'health checks reached B without a PROXY header')
        self.assertGreaterEqual(len(app.checks), 3)
        self.assertEqual(harness.server_state(a, 'p', 'b'), 'up')
        r = harness.http_request(port)
        self.assertEqual(r.status, 200, r)

    def test_http_checks_send_the_v1_header(self):
        self.check_health_through('send-proxy')

    def test_http_checks_send_the_v2_header(self):
        self.check_health_through('send-proxy-v2')


if __name__ == '__main__':
    import unittest
    unittest.main()
