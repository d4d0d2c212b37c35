"""DNS discovery (../shared/CONTRACT.md section 11; docs/configuration.md:
`discover`, `discover_interval`, `[global] resolvers`; docs/reference.md:
Membership and several instances, `show events`).

Each case runs a real dnsmasq on a free loopback port (the test's own
hosts file for A records, `--srv-host` options for SRV records) and points
tcplb's `resolvers` at it; the backends listen on 127.0.0.11, .12, .13 (all
of 127/8 is local), on one port, so each DNS address is one server named
`ADDR:PORT`. dnsmasq re-reads its hosts file on SIGHUP but its SRV records
only when it starts, so SRV changes restart it on the same port. Every wait
is a poll with a deadline; every load loop is bounded in count and time."""

import collections
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import harness

DNSMASQ = '/usr/sbin/dnsmasq'
NAME = 'web.lab.test'
SRV_NAME = '_web._tcp.lab.test'
IPS = ('127.0.0.11', '127.0.0.12', '127.0.0.13')
INTERVAL = 0.5          # discover_interval, seconds
WAIT = 4.0              # a DNS change must show within this (8 intervals)
TS = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'
# fast tcp health checks: a discovered server is down until its first passes
CHECKS = dict(health='tcp', health_interval='100ms', health_timeout='100ms',
              rise=1, fall=2)


def dnsmasq_path():
    path = DNSMASQ if os.access(DNSMASQ, os.X_OK) else shutil.which('dnsmasq')
    if not path:
        raise AssertionError('dnsmasq not found (%s): run `make test-deps` '
                             '(it installs dnsmasq-base)' % DNSMASQ)
    return path


# ---------------------------------------------------------------- DNS client

def _qname(name):
    return b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0'


def _skip_name(msg, off):
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += n + 1


def dns_query(port, name, qtype, timeout=0.5):
    """(rcode, answers) from 127.0.0.1:port, answers the rdata of type
    qtype: an IP for A, (priority, weight, port) for SRV; None when nothing
    answers in time."""
    qid = random.randrange(65536)
    query = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + _qname(name) + \
        struct.pack('>HH', qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(query, (harness.HOST, port))
        while True:
            msg = s.recv(4096)
            if struct.unpack('>H', msg[:2])[0] == qid:
                break
    except OSError:
        return None
    finally:
        s.close()
    rcode = msg[3] & 0x0F
    ancount = struct.unpack('>H', msg[6:8])[0]
    off = _skip_name(msg, 12) + 4
    answers = []
    for _ in range(ancount):
        off = _skip_name(msg, off)
        rtype, _, _, rdlen = struct.unpack('>HHIH', msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == qtype == 1:
            answers.append(socket.inet_ntoa(rdata))
        elif rtype == qtype == 33:
            answers.append(struct.unpack('>HHH', rdata[:6]))
    return rcode, sorted(answers)


class Dnsmasq:
    """A dnsmasq serving the A records of `hosts` ({name: [ip, ...]}) from
    its own file and the SRV records `srv` ([(target, port, priority,
    weight)] for SRV_NAME) on 127.0.0.1:port, in the foreground."""

    def __init__(self, tmpdir):
        self.binary = dnsmasq_path()
        self.dir = tmpdir
        self.port = self._free_udp_tcp_port()
        self.hosts_path = os.path.join(tmpdir, 'dns.hosts')
        self.log_path = os.path.join(tmpdir, 'dnsmasq.log')
        self.hosts = {}
        self.srv = []
        self.proc = None
        self._log = None

    @staticmethod
    def _free_udp_tcp_port():
        for _ in range(50):
            port = harness.free_port()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((harness.HOST, port))
                return port
            except OSError:
                continue
            finally:
                u.close()
        raise AssertionError('no free UDP+TCP port for dnsmasq')

    def write_hosts(self, hosts):
        self.hosts = {k: list(v) for k, v in hosts.items()}
        tmp = self.hosts_path + '.next'
        with open(tmp, 'w') as f:
            for name, ips in self.hosts.items():
                for ip in ips:
                    f.write('%s %s\n' % (ip, name))
        os.replace(tmp, self.hosts_path)

    def start(self, hosts=None, srv=None):
        if hosts is not None:
            self.write_hosts(hosts)
        elif not os.path.exists(self.hosts_path):
            self.write_hosts({})
        if srv is not None:
            self.srv = list(srv)
        args = [self.binary, '--no-daemon', '--port=%d' % self.port,
                '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv',
                '--no-hosts', '--addn-hosts=%s' % self.hosts_path,
                '--conf-file=/dev/null', '--pid-file=', '--log-facility=-']
        if os.geteuid() == 0:
            args.append('--user=root')
        for target, port, prio, weight in self.srv:
            args.append('--srv-host=%s,%s,%d,%d,%d' % (SRV_NAME, target, port, prio, weight))
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, close_fds=True)
        if not harness.wait_until(lambda: self.proc.poll() is not None or
                                  dns_query(self.port, NAME, 1, 0.2) is not None, 5, 0.02) \
                or self.proc.poll() is not None:
            raise AssertionError('dnsmasq did not answer on port %d:\n%s'
                                 % (self.port, self.log()))
        return self

    def reload_hosts(self, hosts):
        """New A records: rewrite the file, SIGHUP, wait until served."""
        self.write_hosts(hosts)
        self.proc.send_signal(signal.SIGHUP)
        for name, ips in hosts.items():
            want = sorted(ips)
            ok = harness.wait_until(
                lambda: (dns_query(self.port, name, 1) or (None, None))[1] == want, 3)
            if not ok:
                raise AssertionError('dnsmasq does not serve %s -> %s:\n%s'
                                     % (name, want, self.log()))

    def stop(self):
        if self.proc is not None:
            harness.stop_process(self.proc)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self, srv=None):
        self.stop()
        self.start(srv=srv)

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')[-3000:]
        except OSError:
            return ''


# ---------------------------------------------------------------- backends

class IpHttpBackend:
    """An HTTP/1.1 server on ip:port (keep-alive or close): every request
    gets 200, `X-Backend: NAME` (NAME defaults to the IP) and body NAME.
    `requests` counts answers, `connections` accepted connections."""

    def __init__(self, ip, port, name=None):
        self.ip = ip
        self.port = port
        self.name = name or ip
        self.addr = '%s:%d' % (ip, port)
        self.requests = 0
        self.connections = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._conns = set()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((ip, port))
        self.lsock.listen(512)
        self.lsock.settimeout(0.1)
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(20)
            with self.lock:
                self.connections += 1
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b''
        try:
            while not self._stop.is_set():
                while b'\r\n\r\n' not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b'\r\n\r\n')
                close = b'connection: close' in head.lower()
                body = (self.name + '\n').encode()
                with self.lock:
                    self.requests += 1
                conn.sendall(('HTTP/1.1 200 OK\r\nX-Backend: %s\r\nContent-Length: %d\r\n'
                              'Connection: %s\r\n\r\n'
                              % (self.name, len(body), 'close' if close else 'keep-alive')
                              ).encode() + body)
                if close:
                    conn.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            pass
        finally:
            with self.lock:
                self._conns.discard(conn)
            conn.close()

    def stop(self):
        self._stop.set()
        self._accepter.join(2)
        self.lsock.close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ---------------------------------------------------------------- base

answer_lines = harness.answer_lines



def pool_servers(lb, pool='p'):
    """{name: server object} of the pool in show stat json."""
    for p in lb.stats_json()['pools']:
        if p['name'] == pool:
            return {s['name']: s for s in p['servers']}
    raise AssertionError('no pool %s' % pool)


def csv_servers(lb, pool='p'):
    """{name: row dict} of the pool in show stat."""
    lines = answer_lines(lb.stats('show stat'))
    head = lines[0].lstrip('# ').split(',')
    rows = [dict(zip(head, ln.split(','))) for ln in lines[1:]]
    return {r['server']: r for r in rows if r['pool'] == pool}


class DiscoverTestCase(harness.TcplbTestCase):

    def setUp(self):
        super().setUp()
        self.dns = Dnsmasq(self.tmp)
        self.addCleanup(self.dns.stop)
        self.bport = harness.free_port()
        self.webs = {}

    def web(self, ip, port=None, name=None):
        b = IpHttpBackend(ip, port or self.bport, name)
        self._backends.append(b)
        self.webs[ip] = b
        return b

    def sname(self, ip, port=None):
        """The server name discovery gives ip on the backends' port."""
        return '%s:%d' % (ip, port or self.bport)

    def start(self, discover=None, servers=(), **pool_keys):
        keys = dict(CHECKS)
        keys.update(pool_keys)
        cfg = self.config(resolvers='%s:%d' % (harness.HOST, self.dns.port))
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', servers, discover=discover or '%s:%d' % (NAME, self.bport),
                 discover_interval='%dms' % (INTERVAL * 1000), **keys)
        lb = self.tcplb(cfg)
        harness.wait_started(lb)
        self.cfg = cfg
        return lb, port

    def wait_servers(self, lb, want, states=('up',), timeout=WAIT):
        """Waits until the pool lists exactly the servers `want` (names), each
        in one of states; returns {name: server}."""
        want = set(want)

        def probe():
            got = pool_servers(lb)
            return set(got) == want and all(s['state'] in states for s in got.values())
        if not harness.wait_until(probe, timeout, 0.02):
            self.fail('pool p is not %s (%s) within %.1fs: %s\nevents:\n%s'
                      % (sorted(want), '/'.join(states), timeout,
                         {n: s['state'] for n, s in pool_servers(lb).items()},
                         lb.stats('show events')))
        return pool_servers(lb)

    def wait_state(self, lb, name, state, timeout=WAIT):
        if harness.wait_server_state(lb, 'p', name, state, timeout) is None:
            self.fail('p/%s not %s within %.1fs: %s'
                      % (name, state, timeout, pool_servers(lb).get(name)))

    event_wait = WAIT

    def backends_of(self, port, n):
        got = collections.Counter()
        for _ in range(n):
            r = harness.http_request(port, timeout=5)
            self.assertEqual(r.status, 200, r)
            got[r.headers.get('x-backend')] += 1
        return dict(got)

    def held_on(self, port, ip, tries=12):
        """A keep-alive connection through tcplb whose first request the
        server at ip answered; the other connections opened on the way are
        closed."""
        others = []
        try:
            for _ in range(tries):
                s = self.connect(port)
                r = harness.http_request(port, close=False, sock=s)
                if r.headers.get('x-backend') == ip:
                    return s
                others.append(s)
        finally:
            for s in others:
                s.close()
        self.fail('no connection landed on %s in %d tries' % (ip, tries))

# ---------------------------------------------------------------- A records

class DiscoverHostTest(DiscoverTestCase):

    def test_servers_appear_named_addr_port_and_share_the_traffic(self):
        """Every address of the name is a server `ADDR:PORT`, found at the
        first lookup (at start), down until its first check passes, in every
        view; round robin then splits exactly over them."""
        for ip in IPS:
            self.web(ip)
        self.dns.start({NAME: IPS})
        t0 = time.monotonic()
        lb, port = self.start()
        names = [self.sname(ip) for ip in IPS]
        found = self.wait_servers(lb, names)
        took = time.monotonic() - t0
        self.assertLess(took, 2 * INTERVAL + 1.0, 'first lookup not at start')
        for ip in IPS:
            self.assertEqual(found[self.sname(ip)]['addr'], self.sname(ip))
            self.wait_event(lb, r'^%s p/%s none->down found by discover$'
                            % (TS, re.escape(self.sname(ip))), 1)
            self.wait_event(lb, r'^%s p/%s down->up .*first check'
                            % (TS, re.escape(self.sname(ip))), 1)
        self.assertEqual(set(csv_servers(lb)), set(names))
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})
        # later lookups of the same answer change nothing
        events = len(self.events(lb))
        end = time.monotonic() + 3 * INTERVAL
        while time.monotonic() < end:
            self.assertEqual(set(pool_servers(lb)), set(names))
            time.sleep(0.1)
        self.assertEqual(len(self.events(lb)), events, self.events(lb))

    def test_removed_record_drains_and_goes_once_its_last_connection_ends(self):
        """Under a steady request loop, the record of .13 is removed: its
        server goes to drain (it was up), takes no new connection, keeps the
        keep-alive connection held to it (which still gets its answers) and
        is listed until that connection closes, then removed; no request of
        the loop fails."""
        for ip in IPS:
            self.web(ip)
        self.dns.start({NAME: IPS})
        lb, port = self.start()
        gone = self.sname(IPS[2])
        self.wait_servers(lb, [self.sname(ip) for ip in IPS])
        held = self.held_on(port, IPS[2])
        loop = harness.RequestLoop(port, max_requests=2500, max_seconds=12).start()
        try:
            self.assertTrue(harness.wait_until(lambda: loop.count(IPS[2]) >= 10, 3),
                            loop.got)
            self.dns.reload_hosts({NAME: IPS[:2]})
            self.wait_state(lb, gone, 'drain')
            self.wait_event(lb, r'^%s p/%s up->drain left the DNS answer'
                            % (TS, re.escape(gone)), 1)
            # no new connection for it; it stays listed while its connection is open
            at_drain = loop.count(IPS[2])
            end = time.monotonic() + 4 * INTERVAL
            while time.monotonic() < end:
                self.assertEqual(pool_servers(lb)[gone]['state'], 'drain')
                time.sleep(0.05)
            self.assertLessEqual(loop.count(IPS[2]), at_drain + 1, loop.got)
            self.assertEqual(pool_servers(lb)[gone]['active'], 1)
            # the held connection still gets its bytes from its server
            r = harness.http_request(port, close=False, sock=held)
            self.assertEqual((r.status, r.headers.get('x-backend')), (200, IPS[2]))
            self.assertEqual(pool_servers(lb)[gone]['state'], 'drain')
            held.close()
            self.wait_servers(lb, [self.sname(ip) for ip in IPS[:2]])
            self.wait_event(lb, r'^%s p/%s drain->none left the DNS answer, its last '
                            r'connection ended$' % (TS, re.escape(gone)), 1)
            before = dict(loop.got)
            self.assertTrue(harness.wait_until(
                lambda: sum(loop.got.values()) >= sum(before.values()) + 20, 3))
        finally:
            loop.stop()
        self.assertEqual(loop.errors, [], 'client errors in the loop: %s' % loop.got)
        self.assertEqual(self.backends_of(port, 10), {IPS[0]: 5, IPS[1]: 5})
        self.assertEqual(set(csv_servers(lb)), {self.sname(ip) for ip in IPS[:2]})

    def test_added_record_joins_and_takes_traffic(self):
        """A new address in the answer is a new server: added, checked, up,
        and in round robin's exact split (here while a loop runs)."""
        for ip in IPS:
            self.web(ip)
        self.dns.start({NAME: IPS[:2]})
        lb, port = self.start()
        self.wait_servers(lb, [self.sname(ip) for ip in IPS[:2]])
        loop = harness.RequestLoop(port, max_requests=2000, max_seconds=8).start()
        try:
            self.dns.reload_hosts({NAME: IPS})
            self.wait_servers(lb, [self.sname(ip) for ip in IPS])
            self.wait_event(lb, r'^%s p/%s none->down found by discover$'
                            % (TS, re.escape(self.sname(IPS[2]))), 1)
            self.assertTrue(harness.wait_until(lambda: loop.count(IPS[2]) >= 20, 3),
                            loop.got)
        finally:
            loop.stop()
        self.assertEqual(loop.errors, [], loop.got)
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})

    def test_dns_outage_keeps_the_servers_and_is_an_event(self):
        """dnsmasq stopped: the lookups fail, `p/discover ok->failed` is an
        event, the servers stay as they were and traffic flows; dnsmasq back
        on the same port: `p/discover failed->ok`."""
        for ip in IPS:
            self.web(ip)
        self.dns.start({NAME: IPS})
        lb, port = self.start()
        names = [self.sname(ip) for ip in IPS]
        self.wait_servers(lb, names)
        self.dns.stop()
        line = self.wait_event(lb, r'^%s p/discover ok->failed ' % TS, 8)
        self.assertIn(NAME, line)
        self.assertIn('keeping the 3 servers', line)
        # several failed rounds change nothing
        end = time.monotonic() + 3 * INTERVAL
        while time.monotonic() < end:
            got = pool_servers(lb)
            self.assertEqual({n: s['state'] for n, s in got.items()},
                             {n: 'up' for n in names})
            time.sleep(0.05)
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})
        self.assertEqual(len([ln for ln in self.events(lb) if 'ok->failed' in ln]), 1,
                         'the outage is one event, not one per round')
        self.dns.start()
        line = self.wait_event(lb, r'^%s p/discover failed->ok ' % TS, 8)
        self.assertIn('3 addresses', line)
        self.assertEqual(set(pool_servers(lb)), set(names))
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})

    def test_static_server_next_to_discover_is_left_alone(self):
        """A `server =` line in the pool is untouched by discovery: it stays
        up, keeps its counters and takes its share while discovered servers
        come and go."""
        static = self.backend(harness.HttpBackend, 'static')
        for ip in IPS[:2]:
            self.web(ip)
        self.dns.start({NAME: IPS[:2]})
        lb, port = self.start(servers=[('static', static)])
        names = ['static'] + [self.sname(ip) for ip in IPS[:2]]
        self.wait_servers(lb, names)
        self.assertEqual(self.backends_of(port, 30),
                         {'static': 10, IPS[0]: 10, IPS[1]: 10})
        self.dns.reload_hosts({NAME: IPS[:1]})
        self.wait_servers(lb, ['static', self.sname(IPS[0])])
        self.assertEqual(self.backends_of(port, 10), {'static': 5, IPS[0]: 5})
        js = self.settled_stats(lb)
        srv = harness.find_server(js, 'p', 'static')
        self.assertEqual((srv['state'], srv['total'], srv['addr']), ('up', 15, static.addr))
        self.assertFalse([ln for ln in self.events(lb) if ' p/static ' in ln and
                          'first check' not in ln], self.events(lb))
        # a DNS outage does not touch it either
        self.dns.stop()
        self.wait_event(lb, r'^%s p/discover ok->failed ' % TS, 8)
        self.assertEqual(self.backends_of(port, 4), {'static': 2, IPS[0]: 2})

    def test_reload_keeps_the_discovered_servers(self):
        """SIGHUP with the same `discover`: the discovered servers are listed
        in every show stat sampled across the reload (no gap) and right after
        it, stay up and keep their counters; a steady loop sees no error."""
        for ip in IPS:
            self.web(ip)
        self.dns.start({NAME: IPS})
        lb, port = self.start()
        names = {self.sname(ip) for ip in IPS}
        self.wait_servers(lb, names)
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})
        samples = []
        stop = threading.Event()

        def sample():
            deadline = time.monotonic() + 10
            while not stop.is_set() and time.monotonic() < deadline:
                samples.append({n: (r['state'], int(r['total']))
                                for n, r in csv_servers(lb).items()})
                time.sleep(0.005)
        sampler = threading.Thread(target=sample, daemon=True)
        loop = harness.RequestLoop(port, max_requests=1500, max_seconds=8).start()
        sampler.start()
        try:
            harness.wait_until(lambda: loop.done >= 20 and len(samples) >= 10, 3)
            # same discover, another key changed
            self.reload(lb, self.cfg.text().replace('retries = 2', 'retries = 1'))
            right_after = csv_servers(lb)
            harness.wait_until(lambda: loop.done >= 60, 3)
        finally:
            stop.set()
            sampler.join(12)
            loop.stop()
        self.assertEqual(set(right_after), names)
        self.assertEqual({r['state'] for r in right_after.values()}, {'up'})
        self.assertGreater(len(samples), 20)
        gaps = [sm for sm in samples
                if set(sm) != names or {st for st, _ in sm.values()} != {'up'}]
        self.assertEqual(gaps, [], 'samples without every discovered server up')
        # counters of the servers that remain are kept: never back to fewer
        for name in names:
            totals = [sm[name][1] for sm in samples]
            self.assertEqual(totals, sorted(totals), '%s total fell: %s' % (name, totals))
            self.assertGreaterEqual(int(right_after[name]['total']), 10)
        self.assertEqual(loop.errors, [], loop.got)
        self.assertFalse([ln for ln in self.events(lb) if 'reload' in ln], self.events(lb))

    def test_every_discovered_server_takes_traffic_after_a_reload(self):
        """After the reload the carried servers should share round robin as
        before (10 each of 30). Fails: membership_carry() publishes each
        carried server before pool->nservers covers it, so the new pool's
        round robin misses the last one carried; it stays listed `up` and
        gets no connection until its next state change."""
        for ip in IPS:
            self.web(ip)
        self.dns.start({NAME: IPS})
        lb, port = self.start()
        self.wait_servers(lb, [self.sname(ip) for ip in IPS])
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})
        self.reload(lb, self.cfg.text().replace('retries = 2', 'retries = 1'))
        self.wait_servers(lb, [self.sname(ip) for ip in IPS])
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})

    def test_discovered_servers_with_health_none_all_take_traffic(self):
        """`health = none`: discovered servers are up at once, so round robin
        should split over all three. Fails: each addition rebuilds round
        robin over the servers before it (pool_server_published runs before
        pool->nservers covers the new one), so the last one found never gets
        a connection (see test_membership's health-none case)."""
        for ip in IPS:
            self.web(ip)
        self.dns.start({NAME: IPS})
        lb, port = self.start(health='none')
        self.wait_servers(lb, [self.sname(ip) for ip in IPS])
        self.assertEqual(self.backends_of(port, 30), {ip: 10 for ip in IPS})


# ---------------------------------------------------------------- SRV records

class DiscoverSrvTest(DiscoverTestCase):

    def test_srv_records_give_each_server_its_port_and_weight(self):
        """discover = srv:...: each record of the best priority is a server
        on its target's address and the record's port, weighted by the
        record's weight (show stat, and round robin's exact split); a record
        of a worse priority is left out; new records (dnsmasq restarted on
        the same port) change the weights."""
        ports = [harness.free_port() for _ in range(3)]
        for ip, p in zip(IPS, ports):
            self.web(ip, p)
        hosts = {'a.lab.test': [IPS[0]], 'b.lab.test': [IPS[1]], 'c.lab.test': [IPS[2]]}
        self.dns.start(hosts, srv=[('a.lab.test', ports[0], 10, 1),
                                   ('b.lab.test', ports[1], 10, 3),
                                   ('c.lab.test', ports[2], 20, 5)])
        lb, port = self.start(discover='srv:%s' % SRV_NAME)
        a, b = self.sname(IPS[0], ports[0]), self.sname(IPS[1], ports[1])
        found = self.wait_servers(lb, [a, b])
        self.assertEqual((found[a]['weight'], found[b]['weight']), (1, 3))
        rows = csv_servers(lb)
        self.assertEqual((rows[a]['addr'], rows[a]['weight']), (a, '1'))
        self.assertEqual((rows[b]['addr'], rows[b]['weight']), (b, '3'))
        self.assertEqual(self.backends_of(port, 40), {IPS[0]: 10, IPS[1]: 30})
        self.assertEqual(self.webs[IPS[2]].requests, 0)
        # new weights (and the worse priority now the only other one)
        self.dns.restart(srv=[('a.lab.test', ports[0], 10, 2),
                              ('b.lab.test', ports[1], 10, 2),
                              ('c.lab.test', ports[2], 20, 5)])
        ok = harness.wait_until(
            lambda: {n: s['weight'] for n, s in pool_servers(lb).items()} == {a: 2, b: 2},
            WAIT)
        self.assertTrue(ok, pool_servers(lb))
        self.assertEqual(self.backends_of(port, 20), {IPS[0]: 10, IPS[1]: 10})
        self.assertEqual(self.webs[IPS[2]].requests, 0)


if __name__ == '__main__':
    unittest.main()
