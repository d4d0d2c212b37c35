"""SIGHUP reload (docs/reference.md: Command line and signals, docs/operations.md): the new
file is checked completely first and an invalid one leaves the running
configuration alone; otherwise pools, servers, weights and listeners change
while established connections keep their server, listeners that stay keep
their sockets (nothing is refused), and the counters, admin states and
persistence entries of remaining servers are kept by pool and server name.

Each case writes the next config over tcplb's file (atomically, by rename),
sends SIGHUP itself and waits for tcplb's `reloaded` / `reload refused`
line, so it never races the reload it is testing. SIGHUP is sent with
os.kill, not Tcplb.signal, so the cleanup still demands a clean exit 0."""

import collections
import os
import random
import re
import socket
import subprocess
import threading
import time

import harness

CHUNK = 64 * 1024
RELOADS = 10
SPACING = 0.3           # seconds between reloads


class ReloadTestCase(harness.TcplbTestCase):

    def backends_of(self, port, n, source=None):
        """X-Backend of n sequential requests, each on a new connection."""
        got = collections.Counter()
        for _ in range(n):
            r = harness.http_request(port, timeout=5, source=source)
            self.assertEqual(r.status, 200, r)
            got[r.headers.get('x-backend')] += 1
        return got

    def echo_once(self, sock, payload):
        sock.sendall(payload)
        return harness.recv_exact(sock, len(payload))

    def wait_refused(self, port, timeout=3.0):
        """True once a connect to port is refused (no listener any more)."""
        def refused():
            try:
                socket.create_connection((harness.HOST, port), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True
        return harness.wait_until(refused, timeout, 0.05)


class PseudoRandomStream:
    """The same byte stream for the sender and the checker: chunk i is
    CHUNK bytes drawn from random.Random(seed)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def chunk(self):
        return self.rng.randbytes(CHUNK)


class StreamAcrossReloadsTest(ReloadTestCase):

    def test_long_lived_stream_crosses_ten_reloads_without_a_byte_lost(self):
        echo1 = self.backend(harness.EchoBackend, 'echo1')
        echo2 = self.backend(harness.EchoBackend, 'echo2')
        main_port, extra_port = harness.free_port(), harness.free_port()

        def config(variant):
            # variant 0: s1 alone, one listener; 1: weights change, s2 and
            # a second listener appear. They alternate.
            cfg = self.config(workers=2)
            cfg.listener('main', pool='p', port=main_port)
            servers = [('s1', echo1, 'weight=%d' % (1 if variant == 0 else 3))]
            if variant == 1:
                cfg.listener('extra', pool='p', port=extra_port)
                servers.append(('s2', echo2, 'weight=1'))
            cfg.pool('p', servers, idle_timeout='60s')
            return cfg

        lb = self.tcplb(config(0))
        sock = self.connect(main_port)
        seed = 0x7c9b1e
        sent = [0]
        received = [0]
        errors = []
        stop = threading.Event()

        def sender():
            stream = PseudoRandomStream(seed)
            try:
                while not stop.is_set():
                    sock.sendall(stream.chunk())
                    sent[0] += CHUNK
                    time.sleep(0.002)   # steady, not a CPU hog on 2 cores
                sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                errors.append('send after %d bytes: %r' % (sent[0], e))

        def reader():
            stream = PseudoRandomStream(seed)
            want = b''
            try:
                while True:
                    data = sock.recv(CHUNK)
                    if not data:
                        return
                    while len(want) < len(data):
                        want += stream.chunk()
                    if data != want[:len(data)]:
                        at = next(i for i in range(len(data)) if data[i] != want[i])
                        errors.append('byte %d differs from the stream'
                                      % (received[0] + at))
                        return
                    want = want[len(data):]
                    received[0] += len(data)
            except OSError as e:
                errors.append('recv after %d bytes: %r' % (received[0], e))

        threads = [threading.Thread(target=sender, daemon=True),
                   threading.Thread(target=reader, daemon=True)]
        for t in threads:
            t.start()
        self.assertTrue(harness.wait_until(lambda: received[0] > 4 * CHUNK, 5),
                        'the stream does not flow before any reload')

        progress = [received[0]]
        for i in range(RELOADS):
            time.sleep(SPACING)
            self.reload(lb, config((i + 1) % 2))
            progress.append(received[0])
        time.sleep(SPACING)
        progress.append(received[0])
        stop.set()
        for t in threads:
            t.join(20)
        self.assertFalse(any(t.is_alive() for t in threads), 'stream stuck')
        self.assertEqual(errors, [])
        self.assertEqual(received[0], sent[0], 'bytes echoed vs bytes sent')
        stalls = [i for i in range(len(progress) - 1)
                  if progress[i + 1] <= progress[i]]
        self.assertEqual(stalls, [], 'no byte arrived between these reloads: '
                         '%s (progress %s)' % (stalls, progress))
        print('\n    streamed %.1f MiB across %d reloads'
              % (sent[0] / 1048576, RELOADS), end=' ', flush=True)

        # The stream stayed on the server it started on, byte for byte.
        harness.wait_until(lambda: echo1.received, 3)
        self.assertEqual([n for n, _ in echo1.received], [sent[0]])
        self.assertEqual(echo2.received, [])
        self.assertEqual(len(harness.reload_lines(lb)), RELOADS)
        js = self.settled_stats(lb)
        s1 = harness.find_server(js, 'p', 's1')
        self.assertEqual((s1['bytes_in'], s1['bytes_out']), (sent[0], sent[0]))


class ConnectionLoopAcrossReloadsTest(ReloadTestCase):

    def test_connection_loop_sees_no_failure_and_new_weights_apply(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        c = self.backend(harness.HttpBackend, 'c')
        port, extra_port = harness.free_port(), harness.free_port()

        def config(weights, extra=False):
            cfg = self.config(workers=2)
            cfg.listener('web', pool='p', mode='http', port=port)
            if extra:
                cfg.listener('extra', pool='p', mode='http', port=extra_port)
            cfg.pool('p', [(name, be, 'weight=%d' % weights[name])
                           for name, be in (('a', a), ('b', b), ('c', c))
                           if name in weights])
            return cfg

        lb = self.tcplb(config({'a': 1, 'b': 1}))
        ok = [0]
        failures = []
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    r = harness.http_request(port, timeout=5)
                    if r.status == 200 and r.body in (b'a\n', b'b\n', b'c\n'):
                        ok[0] += 1
                    else:
                        failures.append(repr(r))
                except (OSError, AssertionError) as e:
                    failures.append(repr(e))

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        # B: a third server and a second listener; C: weights 1:2, both go.
        variants = [({'a': 3, 'b': 1, 'c': 1}, True), ({'a': 1, 'b': 2}, False)]
        counts = []
        for i in range(RELOADS):
            time.sleep(SPACING)
            self.reload(lb, config(*variants[i % 2]))
            counts.append(ok[0])
        time.sleep(SPACING)
        stop.set()
        t.join(10)
        self.assertFalse(t.is_alive(), 'the connection loop is stuck')
        self.assertEqual(failures, [], '%d ok, %d failed' % (ok[0], len(failures)))
        self.assertGreater(ok[0], 2 * RELOADS, 'too few requests to prove much')
        self.assertEqual([i for i in range(1, len(counts))
                          if counts[i] <= counts[i - 1]], [],
                         'no request completed between reloads: %s' % counts)
        print('\n    %d requests, none failed' % ok[0], end=' ', flush=True)

        # The last reload (C: a=1, b=2, no c) rules alone now.
        self.settled_stats(lb)
        self.assertEqual(dict(self.backends_of(port, 60)), {'a': 20, 'b': 40})


class InvalidConfigTest(ReloadTestCase):

    def start(self):
        self.a = self.backend(harness.HttpBackend, 'a')
        self.b = self.backend(harness.HttpBackend, 'b')
        self.port = harness.free_port()
        lb = self.tcplb(self.valid({'a': 1, 'b': 1}))
        return lb

    def valid(self, weights):
        cfg = self.config(workers=2)
        cfg.listener('web', pool='p', mode='http', port=self.port)
        cfg.pool('p', [('a', self.a, 'weight=%d' % weights['a']),
                       ('b', self.b, 'weight=%d' % weights['b'])])
        return cfg

    def test_unknown_key_then_syntax_error_keep_the_running_config(self):
        lb = self.start()
        self.assertEqual(dict(self.backends_of(self.port, 10)), {'a': 5, 'b': 5})
        self.settled_stats(lb)
        before = lb.stats('show stat')

        unknown = self.valid({'a': 5, 'b': 1}).text() + 'no_such_key = 1\n'
        self.reload(lb, unknown, expect='reload refused')
        self.assertEqual(lb.stats('show stat'), before)
        self.assertEqual(dict(self.backends_of(self.port, 10)), {'a': 5, 'b': 5},
                         'the old weights still rule')

        self.settled_stats(lb)
        before = lb.stats('show stat')
        broken = self.valid({'a': 5, 'b': 1}).text().replace(
            '[pool p]', '[pool p') + 'this line is not ini\n'
        self.reload(lb, broken, expect='reload refused')
        self.assertEqual(lb.stats('show stat'), before)
        self.assertEqual(dict(self.backends_of(self.port, 10)), {'a': 5, 'b': 5})
        refused = [ln for ln in harness.reload_lines(lb) if 'reload refused' in ln]
        self.assertEqual(len(refused), 2, refused)

        # Refusals leave reloading usable: a valid file still applies.
        self.reload(lb, self.valid({'a': 2, 'b': 1}))
        self.assertEqual(dict(self.backends_of(self.port, 30)), {'a': 20, 'b': 10})

    def test_out_of_range_weight_is_refused_as_tcplb_c_refuses_it(self):
        # A reload runs the same validation as tcplb -c.
        lb = self.start()
        bad = self.valid({'a': 1, 'b': 1}).text().replace('weight=1', 'weight=999', 1)
        self.reload(lb, bad, expect='reload refused')
        rc = subprocess.run([harness.tcplb_bin(), '-c', '-f', lb.cfg_path],
                            capture_output=True, timeout=10).returncode
        self.assertNotEqual(rc, 0)
        self.assertEqual(dict(self.backends_of(self.port, 4)), {'a': 2, 'b': 2})


class StateKeptAcrossReloadTest(ReloadTestCase):

    def test_counters_of_a_remaining_server_continue_after_reload(self):
        e1 = self.backend(harness.EchoBackend, 'e1')
        e2 = self.backend(harness.EchoBackend, 'e2')
        port = harness.free_port()

        def config(with_e2):
            cfg = self.config(workers=2)
            cfg.listener('tcp', pool='p', port=port)
            servers = [('s1', e1, 'weight=%d' % (2 if with_e2 else 1))]
            if with_e2:
                servers.append(('s2', e2))
            cfg.pool('p', servers)
            return cfg

        lb = self.tcplb(config(False))
        for i in range(5):
            s = self.connect(port)
            self.assertEqual(self.echo_once(s, b'before-%d' % i), b'before-%d' % i)
            s.close()
        js = self.settled_stats(
            lb, lambda js: harness.find_server(js, 'p', 's1')['total'] == 5)
        s1 = harness.find_server(js, 'p', 's1')
        self.assertEqual((s1['total'], s1['bytes_in'], s1['bytes_out']), (5, 40, 40))

        self.reload(lb, config(True))
        js = lb.stats_json()
        s1 = harness.find_server(js, 'p', 's1')
        self.assertEqual((s1['total'], s1['bytes_in'], s1['bytes_out'], s1['weight']),
                         (5, 40, 40, 2), 'kept, not reset')
        s2 = harness.find_server(js, 'p', 's2')
        self.assertEqual((s2['total'], s2['bytes_in']), (0, 0))

        for i in range(6):
            s = self.connect(port)
            self.assertEqual(self.echo_once(s, b'after-%d' % i), b'after-%d' % i)
            s.close()
        js = self.settled_stats(lb, lambda js: sum(
            harness.find_server(js, 'p', n)['total'] for n in ('s1', 's2')) == 11)
        self.assertEqual(harness.find_server(js, 'p', 's1')['total'], 5 + 4)
        self.assertEqual(harness.find_server(js, 'p', 's2')['total'], 2)
        self.assertEqual(harness.find_server(js, 'p', 's1')['bytes_in'], 40 + 4 * 7)
        self.assertEqual(harness.find_listener(js, 'tcp')['total'], 11,
                         'the listener kept its count too')

    def test_drain_and_maint_survive_a_reload(self):
        backends = {n: self.backend(harness.HttpBackend, n) for n in 'abc'}
        port = harness.free_port()

        def config(weight_b):
            cfg = self.config(workers=2)
            cfg.listener('web', pool='p', mode='http', port=port)
            cfg.pool('p', [('a', backends['a']),
                           ('b', backends['b'], 'weight=%d' % weight_b),
                           ('c', backends['c'])])
            return cfg

        lb = self.tcplb(config(1))
        self.assertIn('drain', lb.stats('drain server p/a'))
        self.assertIn('maint', lb.stats('disable server p/c'))
        self.reload(lb, config(3))
        js = lb.stats_json()
        self.assertEqual(harness.find_server(js, 'p', 'a')['state'], 'drain')
        self.assertEqual(harness.find_server(js, 'p', 'c')['state'], 'maint')
        self.assertEqual(harness.find_server(js, 'p', 'b')['weight'], 3)
        self.assertEqual(dict(self.backends_of(port, 6)), {'b': 6})
        lb.stats('enable server p/a')
        self.assertEqual(harness.server_state(lb, 'p', 'a'), 'up')

    def test_persistent_clients_keep_their_server_across_reload(self):
        backends = {n: self.backend(harness.HttpBackend, n) for n in 'abc'}
        port = harness.free_port()

        def config(weights):
            cfg = self.config(workers=2)
            cfg.listener('web', pool='p', mode='http', port=port)
            cfg.pool('p', [(n, backends[n], 'weight=%d' % weights[n])
                           for n in 'abc'], persist='source')
            return cfg

        lb = self.tcplb(config({'a': 1, 'b': 1, 'c': 1}))
        clients = [harness.client_ip(i) for i in range(9)]
        first = {}
        for ip in clients:
            got = self.backends_of(port, 1, source=ip)
            first[ip] = next(iter(got))
        self.assertEqual(sorted(collections.Counter(first.values()).values()),
                         [3, 3, 3], 'round robin spreads the first connections')

        # New weights would send every fresh client to c.
        self.reload(lb, config({'a': 1, 'b': 1, 'c': 200}))
        for ip in clients:
            self.assertEqual(dict(self.backends_of(port, 2, source=ip)),
                             {first[ip]: 2}, 'client %s moved' % ip)
            which = lb.stats('which p %s' % ip).split()
            self.assertEqual(which[:2], [first[ip], 'persist'], which)


class ListenersAcrossReloadTest(ReloadTestCase):

    def test_new_listener_accepts_removed_one_refuses(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        main_port, old_port, new_port = (harness.free_port() for _ in range(3))

        def config(second, second_port):
            cfg = self.config(workers=2)
            cfg.listener('main', pool='p', port=main_port)
            cfg.listener(second, pool='p', port=second_port)
            cfg.pool('p', [('s', echo)])
            return cfg

        lb = self.tcplb(config('old', old_port))
        held = self.connect(old_port)
        self.assertEqual(self.echo_once(held, b'on old'), b'on old')
        self.assertFalse(harness.is_listening(new_port))

        self.reload(lb, config('new', new_port))
        self.assertTrue(harness.wait_until(lambda: harness.is_listening(new_port), 3),
                        'the new listener does not listen')
        s = self.connect(new_port)
        self.assertEqual(self.echo_once(s, b'on new'), b'on new')
        s.close()
        self.assertTrue(self.wait_refused(old_port),
                        'the removed listener still accepts')
        m = self.connect(main_port)
        self.assertEqual(self.echo_once(m, b'on main'), b'on main')
        m.close()
        # A connection the removed listener accepted before goes on.
        self.assertEqual(self.echo_once(held, b'still here'), b'still here')
        held.close()
        js = self.settled_stats(lb)
        names = sorted(lst['name'] for lst in js['listeners'])
        self.assertEqual(names, ['main', 'new'])

    def test_kept_listener_keeps_its_socket(self):
        # Same address across the reload: the very same listening sockets
        # (no window where a connect could be refused).
        echo = self.backend(harness.EchoBackend, 'echo')
        port = harness.free_port()

        def config(weight):
            cfg = self.config(workers=2)
            cfg.listener('main', pool='p', port=port)
            cfg.pool('p', [('s', echo, 'weight=%d' % weight)])
            return cfg

        lb = self.tcplb(config(1))
        before = listening_inodes(lb.pid, port)
        self.assertEqual(len(before), 2, 'one SO_REUSEPORT socket per worker')
        self.reload(lb, config(2))
        harness.wait_until(lambda: listening_inodes(lb.pid, port) == before, 2)
        self.assertEqual(listening_inodes(lb.pid, port), before)


def listening_inodes(pid, port):
    """Inodes of pid's listening sockets on 127.0.0.1:port."""
    inodes = set()
    with open('/proc/net/tcp') as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == '0A' and int(fields[1].rsplit(':', 1)[1], 16) == port:
                inodes.add(fields[9])
    mine = set()
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r'socket:\[(\d+)\]', target)
        if m and m.group(1) in inodes:
            mine.add(m.group(1))
    return mine
