"""Two tcplb instances behind one VRRP address (docs/scale-out.md; CONTRACT
sections 11 and 12): keepalived, run with tools/scale-out/keepalived.conf.in,
moves the address when tcplb's GET /health fails, and both instances place
clients alike with scheduler = source.

Each test builds its own network, five namespaces named after this
process's PID, joined by a bridge in `sw`; 10.213.0.0/24 exists only
inside them:

    c   client   10.213.0.10 and .100-.109 ---+
    l1  tcplb + keepalived  10.213.0.11 ------+
    l2  tcplb + keepalived  10.213.0.12 ------+-- br0 (in sw)
    b   tcplb-backend web1-3 .21 .22 .23:8080 +
    VIP 10.213.0.50:80, on l1 at the start (both tcplb bind it freebind)

and proves: the client reaches the VIP through the master, which counts
it; both instances have one `mapping` digest and place 1,000 IPs alike
(l2 lists its servers in another order); SIGTERM to the master's tcplb
moves the VIP so that a new connection is served by l2 within 3 s (the
time is printed), and the clients keep their servers; `drain self` moves
it without a single refused connection while the old tcplb still serves.
CheckScriptTest runs tools/scale-out/check-tcplb, the alternative track
script, against a tcplb on loopback.

Traffic stays inside those namespaces and 127.0.0.1. Cleanup stops what the
test started by PID, then deletes the namespaces (with their veths and
bridge), also when a test fails. The tests skip when network namespaces
cannot be created (no privilege) and fail when keepalived, ip or curl is
missing (`make test-deps` installs them)."""

import ctypes
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness

NET = '10.213.0.'
VIP = NET + '50'
VIP_PORT = 80
STATS_HTTP = '127.0.0.1:8404'      # in each instance's namespace
SERVER_PORT = 8080
CLIENT = NET + '10'
CLIENT_IPS = [NET + str(i) for i in range(100, 110)]
INSTANCES = {'l1': (NET + '11', 110), 'l2': (NET + '12', 100)}
SERVERS = (('web1', NET + '21'), ('web2', NET + '22'), ('web3', NET + '23'))
FAILOVER_BOUND = 3.0                # seconds from the stop to a served client
SAMPLE_IPS = 1000
CONF_IN = os.path.join(harness.REPO, 'tools', 'scale-out', 'keepalived.conf.in')
CURL = '/usr/bin/curl'              # as keepalived.conf.in names it
TCPLBCTL = os.path.join(harness.REPO, 'tools', 'tcplbctl')
CLONE_NEWNET = 0x40000000
PROCESS_STOP = 5.0

_libc = ctypes.CDLL(None, use_errno=True)
_seq = itertools.count()


def find_tool(name):
    """An executable from PATH or the sbin directories root's PATH may lack."""
    return shutil.which(name) or next(
        (p for p in ('/usr/sbin/' + name, '/sbin/' + name, '/usr/bin/' + name)
         if os.access(p, os.X_OK)), None)


def backend_bin():
    """tcplb-backend next to the tcplb under test."""
    return os.path.join(os.path.dirname(harness.tcplb_bin()), 'tcplb-backend')


def in_netns(ns, fn, *args):
    """Runs fn(*args) in a thread that joined network namespace ns (setns
    moves only the calling thread) and returns its value or raises its
    exception. A socket made there stays in ns for good."""
    out = {}

    def run():
        try:
            fd = os.open('/run/netns/' + ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, 'setns %s: %s' % (ns, os.strerror(err)))
            finally:
                os.close(fd)
            out['value'] = fn(*args)
        except BaseException as e:      # handed to the caller
            out['error'] = e
    t = threading.Thread(target=run, name='netns-' + ns)
    t.start()
    t.join()
    if 'error' in out:
        raise out['error']
    return out['value']


def ns_socket(ns):
    return in_netns(ns, socket.socket, socket.AF_INET, socket.SOCK_STREAM)


def listening_in(pid, port):
    """True when process pid's network namespace has a TCP socket listening
    on port (its /proc/PID/net/tcp, not ours)."""
    try:
        with open('/proc/%d/net/tcp' % pid) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if (len(fields) > 3 and fields[3] == '0A' and
                        int(fields[1].rsplit(':', 1)[1], 16) == port):
                    return True
    except OSError:
        pass
    return False


def tail(path, lines=30):
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return '(no %s)' % path
    return '\n'.join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- network

class Network:
    """The namespaces of one test and the links between them. Names carry
    the PID and a sequence number, so runs side by side never meet; remove()
    deletes every namespace made, which takes its veths and bridge along."""

    ROLES = ('c', 'l1', 'l2', 'b')

    def __init__(self):
        self.ip_bin = find_tool('ip')
        tag = 'tcplbka-%d-%d' % (os.getpid(), next(_seq))
        self.ns = {r: '%s-%s' % (tag, r) for r in ('sw',) + self.ROLES}
        self.made = []

    def ip(self, *args, ns=None, check=True):
        argv = [self.ip_bin] + (['-n', self.ns[ns]] if ns else []) + list(args)
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=10)
        if check and r.returncode != 0:
            raise AssertionError('%s: exit %d: %s' % (' '.join(argv), r.returncode,
                                                      r.stderr.strip()))
        return r

    def add_namespace(self, role):
        r = self.ip('netns', 'add', self.ns[role], check=False)
        if r.returncode != 0:
            if re.search(r'not permitted|permission denied', r.stderr, re.I):
                raise unittest.SkipTest('network namespaces cannot be created '
                                        'here (%s)' % r.stderr.strip())
            raise AssertionError('ip netns add %s: %s' % (self.ns[role], r.stderr))
        self.made.append(self.ns[role])

    def build(self):
        for role in ('sw',) + self.ROLES:
            self.add_namespace(role)
        self.ip('link', 'add', 'br0', 'type', 'bridge', ns='sw')
        self.ip('link', 'set', 'br0', 'up', ns='sw')
        addrs = {'c': [CLIENT] + CLIENT_IPS, 'b': [a for _, a in SERVERS],
                 'l1': [INSTANCES['l1'][0]], 'l2': [INSTANCES['l2'][0]]}
        for role in self.ROLES:
            # made from inside sw: the host's namespace never sees a link
            port = 'port-' + role
            self.ip('link', 'add', 'name', port, 'type', 'veth', 'peer', 'name', 'eth0',
                    'netns', self.ns[role], ns='sw')
            self.ip('link', 'set', port, 'master', 'br0', 'up', ns='sw')
            self.ip('link', 'set', 'lo', 'up', ns=role)
            for a in addrs[role]:
                self.ip('addr', 'add', a + '/24', 'dev', 'eth0', ns=role)
            self.ip('link', 'set', 'eth0', 'up', ns=role)

    def remove(self):
        for name in reversed(self.made):
            self.ip('netns', 'del', name, check=False)
        self.made = []

    def holds_vip(self, role):
        out = self.ip('-4', '-o', 'addr', 'show', 'dev', 'eth0', ns=role).stdout
        return (' %s/' % VIP) in out

    def vip_holders(self):
        return [r for r in ('l1', 'l2') if self.holds_vip(r)]

    def describe(self):
        parts = []
        for role in self.ROLES:
            if self.ns[role] in self.made:
                r = self.ip('-4', '-br', 'addr', ns=role, check=False)
                parts.append('%s: %s' % (role, ' | '.join(r.stdout.split('\n')).strip()))
        return '\n'.join(parts)


class NsProcess:
    """A program run with `ip netns exec NS ...`, which execs it in the same
    process: the PID is the program's. Output goes to a file; stop() sends
    SIGTERM to that PID only, SIGKILL after PROCESS_STOP seconds."""

    def __init__(self, net, role, argv, out_path):
        self.out_path = out_path
        self._out = open(out_path, 'wb')
        self.proc = subprocess.Popen([net.ip_bin, 'netns', 'exec', net.ns[role]] + argv,
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, close_fds=True)
        self.pid = self.proc.pid
        self._terminated = False

    def running(self):
        return self.proc.poll() is None

    def output(self):
        try:
            with open(self.out_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def terminate(self):
        """SIGTERM to this process, once, if it still runs."""
        if self.proc.poll() is None and not self._terminated:
            self._terminated = True
            os.kill(self.pid, signal.SIGTERM)

    def stop(self):
        """terminate(), wait, SIGKILL as a last resort; the exit code."""
        self.terminate()
        try:
            self.proc.wait(PROCESS_STOP)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._out.close()
        return self.proc.returncode


class Keepalived(NsProcess):
    """keepalived in the foreground, VRRP only, logging to its output file,
    its pid files in the test's directory."""

    def __init__(self, net, role, tmpdir, binary):
        self.role = role
        self_ip, priority = INSTANCES[role]
        peer = INSTANCES['l2' if role == 'l1' else 'l1'][0]
        values = {'ROUTER_ID': 'tcplb-' + role, 'PRIORITY': str(priority),
                  'INTERFACE': 'eth0', 'SELF': self_ip, 'PEER': peer,
                  'VIP': VIP + '/24', 'STATS_HTTP': STATS_HTTP}
        lines = []
        with open(CONF_IN) as f:
            for line in f:
                if not line.lstrip().startswith('#'):     # comments stay as they are
                    unknown = set(re.findall(r'@(\w+)@', line)) - set(values)
                    if unknown:
                        raise AssertionError('%s: unknown placeholder %s in %r'
                                             % (CONF_IN, sorted(unknown), line))
                    line = re.sub(r'@(\w+)@', lambda m: values[m.group(1)], line)
                lines.append(line)
        text = ''.join(lines)
        self.conf = os.path.join(tmpdir, 'keepalived-%s.conf' % role)
        with open(self.conf, 'w') as f:
            f.write(text)
        self.vrrp_pidfile = os.path.join(tmpdir, 'keepalived-%s-vrrp.pid' % role)
        argv = [binary, '--dont-fork', '--log-console', '--log-detail',
                '--no-syslog', '--vrrp', '--use-file', self.conf,
                '--pid', os.path.join(tmpdir, 'keepalived-%s.pid' % role),
                '--vrrp_pid', self.vrrp_pidfile]
        super().__init__(net, role, argv, os.path.join(tmpdir, 'keepalived-%s.out' % role))

    def stop(self):
        rc = super().stop()
        # the VRRP child follows its parent; should it not, it is ours too
        try:
            with open(self.vrrp_pidfile) as f:
                child = int(f.read().strip() or 0)
        except (OSError, ValueError):
            child = 0
        if child > 0 and not harness.wait_until(
                lambda: not os.path.exists('/proc/%d' % child), 2.0):
            try:
                with open('/proc/%d/cmdline' % child, 'rb') as f:
                    ours = b'keepalived' in f.read()
                if ours:
                    os.kill(child, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        return rc


# ---------------------------------------------------------------- tests

class AnswerLost(OSError):
    """A request whose connection was made but whose answer never came
    whole. A request in flight when the VIP moves ends so: the old holder
    can no longer send from the address, and the client waits for its
    answer (or is reset by the new holder when it sends again)."""


class KeepalivedTestCase(harness.TcplbTestCase):
    """Builds the network, starts the backends, both tcplb and then both
    keepalived, and returns once l1 holds the VIP and l2 is its backup."""

    def setUp(self):
        self.net = None
        self.keepalived = {}
        self.procs = []
        # registered before the base class's cleanup, so it runs after it:
        # the namespaces go once every process in them has stopped
        self.addCleanup(self._remove_network)
        super().setUp()
        self.addCleanup(self._stop_procs)
        if find_tool('ip') is None:
            self.fail('ip (iproute2) not found: run `make test-deps`')
        self.net = Network()
        self.net.build()            # skips the test without the privilege
        ka_bin = find_tool('keepalived')
        if ka_bin is None:
            self.fail('keepalived not found: run `make test-deps` (installs it)')
        if not os.access(CURL, os.X_OK):
            self.fail('%s not found (keepalived.conf.in runs it): run `make test-deps`'
                      % CURL)
        if not os.access(backend_bin(), os.X_OK):
            self.fail('%s not built: run make' % backend_bin())
        self.start_backends()
        # l2 lists the servers in another order: placement must not care
        self.lb = {'l1': self.start_tcplb('l1', SERVERS),
                   'l2': self.start_tcplb('l2', SERVERS[::-1])}
        for role in ('l1', 'l2'):
            self.wait_all_up(self.lb[role])
        self.start_keepalived('l1', ka_bin)
        self.wait_vip('l1', 8.0)
        self.start_keepalived('l2', ka_bin)
        self.wait_output(self.keepalived['l2'], r'Entering BACKUP STATE', 5.0)
        self.assertEqual(self.net.vip_holders(), ['l1'])

    # -- what setUp starts

    def start_backends(self):
        for name, addr in SERVERS:
            p = NsProcess(self.net, 'b', [backend_bin(), '--name', name, '--listen',
                                          '%s:%d' % (addr, SERVER_PORT), '--mode', 'http'],
                          os.path.join(self.tmp, 'backend-%s.out' % name))
            self.procs.append(p)
        for p in self.procs:
            self.wait_output(p, r'^listening ', 5.0)

    def start_tcplb(self, role, servers):
        sock = os.path.join(self.tmp, '%s.sock' % role)
        lines = ['[global]', 'workers = 2', 'stats_socket = ' + sock,
                 'stats_http = ' + STATS_HTTP,
                 'log = ' + os.path.join(self.tmp, '%s-access.log' % role),
                 'shutdown_timeout = 2s', '',
                 '[listener web]', 'bind = %s:%d freebind' % (VIP, VIP_PORT),
                 'pool = p', 'mode = http', '',
                 '[pool p]', 'scheduler = source']
        lines += ['server = %s %s:%d' % (n, a, SERVER_PORT) for n, a in servers]
        lines += ['health = tcp', 'health_interval = 500ms', 'health_timeout = 300ms',
                  'rise = 1', 'fall = 2', 'connect_timeout = 1s', '']
        lb = harness.Tcplb(self.tmp, '\n'.join(lines), stats_socket=sock,
                           name='tcplb-' + role)
        self._lbs.append(lb)        # the base class stops it and checks its exit
        lb.wrapper = [self.net.ip_bin, 'netns', 'exec', self.net.ns[role]] + lb.wrapper
        lb.start()
        # no listener port to wait for from here: the `started` line, or an exit
        harness.wait_until(lambda: not lb.running() or
                           'tcplb: started' in harness.tcplb_output(lb), 10.0, 0.02)
        if not lb.running():
            lb.start_failed = True
            self.fail('tcplb in %s exited with %s at start\n%s'
                      % (role, lb.wait(1), lb.log_tail()))
        harness.wait_started(lb)
        port = int(STATS_HTTP.rsplit(':', 1)[1])
        if not harness.wait_until(lambda: listening_in(lb.pid, VIP_PORT) and
                                  listening_in(lb.pid, port), 5.0):
            self.fail('tcplb in %s not listening on %d and %d\n%s'
                      % (role, VIP_PORT, port, lb.log_tail()))
        return lb

    def start_keepalived(self, role, binary):
        ka = Keepalived(self.net, role, self.tmp, binary)
        self.keepalived[role] = ka
        return ka

    def _stop_procs(self):
        # keepalived takes a second to stop: both at once
        for ka in self.keepalived.values():
            ka.terminate()
        for ka in self.keepalived.values():
            ka.stop()
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.stop()

    def _remove_network(self):
        if self.net is not None:
            self.net.remove()

    def tcplb_diagnostics(self):
        parts = [super().tcplb_diagnostics()]
        for role, ka in sorted(self.keepalived.items()):
            parts.append('--- keepalived %s (%s) ---\n%s' % (role, ka.out_path,
                                                           tail(ka.out_path)))
        if self.net is not None and self.net.made:
            parts.append('--- addresses ---\n' + self.net.describe())
        return '\n'.join(parts)

    # -- waiting

    def wait_output(self, proc, pattern, timeout):
        rx = re.compile(pattern, re.M)
        if not harness.wait_until(lambda: rx.search(proc.output()), timeout):
            self.fail('no line matching %r from %s within %.0fs:\n%s'
                      % (pattern, proc.out_path, timeout, tail(proc.out_path)))

    def wait_all_up(self, lb):
        def up():
            js = lb.stats_json()
            return all(s['state'] == 'up' for p in js['pools'] for s in p['servers'])
        if not harness.wait_until(up, 5.0):
            self.fail('servers not up: %s' % lb.stats('show stat'))

    def wait_vip(self, role, timeout):
        """Waits until role, and only role, holds the VIP; returns the
        monotonic time it was first seen so."""
        seen = harness.wait_until(lambda: self.net.vip_holders() == [role] and
                                  time.monotonic(), timeout, 0.02)
        if not seen:
            self.fail('VIP not on %s alone within %.0fs (holders: %s)'
                      % (role, timeout, self.net.vip_holders()))
        return seen

    # -- clients

    def request(self, source=None, connect_timeout=3.0, timeout=5.0):
        """One GET through VIP:80 from the client namespace (from source,
        one of its addresses); returns the name of the backend that
        answered. Raises OSError when the connect fails (refused, timed
        out), AnswerLost when it succeeded but no whole answer came."""
        s = ns_socket(self.net.ns['c'])
        try:
            if source:
                s.bind((source, 0))
            s.settimeout(connect_timeout)
            s.connect((VIP, VIP_PORT))
            s.settimeout(timeout)
            try:
                s.sendall(b'GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n')
                r = harness.read_http_response(s)
            except (OSError, AssertionError) as e:
                raise AnswerLost('connected, then %s: %s' % (type(e).__name__, e)) from e
        finally:
            s.close()
        if r.status != 200:
            raise AnswerLost('HTTP status %s: %r' % (r.status, r))
        return r.body.decode().strip()

    def random_phase(self):
        """Sleeps 0-1 s: keepalived checks once a second from its start, and
        setUp takes about as long every run, so without this every run
        would stop tcplb at the same point of a check period and measure
        the same failover time instead of the spread."""
        time.sleep(random.random())

    def health(self, role):
        """(status, body) of GET /health on role's stats_http."""
        s = ns_socket(self.net.ns[role])
        try:
            s.settimeout(2.0)
            host, port = STATS_HTTP.rsplit(':', 1)
            s.connect((host, int(port)))
            s.sendall(b'GET /health HTTP/1.1\r\nHost: lb\r\n\r\n')
            r = harness.read_http_response(s)
        finally:
            s.close()
        return r.status, r.body.decode().strip()

    def accepted(self, role):
        """Connections role's listener has accepted so far."""
        return harness.find_listener(self.lb[role].stats_json(), 'web')['total']

    def placements(self, role, ips):
        """{ip: server} from `which p IP` for every ip, asked over one
        stats connection (commands end in a newline, answers in an empty
        line)."""
        text = self.lb[role].stats_raw(''.join('which p %s\n' % ip for ip in ips),
                                       timeout=10.0)
        answers = [a.strip() for a in text.split('\n\n') if a.strip()]
        self.assertEqual(len(answers), len(ips), text[:500])
        return {ip: a.split()[0] for ip, a in zip(ips, answers)}


def sample_ips(n):
    """n client addresses, the same every run: IPv4 over the whole space
    and some IPv6."""
    rnd = random.Random(12)
    ips = []
    while len(ips) < n:
        if len(ips) % 10 == 9:
            ips.append('2001:db8:%x:%x::%x' % (rnd.getrandbits(16), rnd.getrandbits(16),
                                               rnd.getrandbits(16)))
        else:
            ips.append('%d.%d.%d.%d' % (rnd.randint(1, 223), rnd.getrandbits(8),
                                        rnd.getrandbits(8), rnd.randint(1, 254)))
    return ips


class ActiveBackupTest(KeepalivedTestCase):

    def test_client_reaches_vip_through_master(self):
        name = self.request()
        self.assertIn(name, [n for n, _ in SERVERS])
        js1 = self.settled_stats(self.lb['l1'])
        js2 = self.settled_stats(self.lb['l2'])
        self.assertEqual(harness.find_listener(js1, 'web')['total'], 1, js1)
        self.assertEqual(harness.find_server(js1, 'p', name)['total'], 1, js1)
        self.assertEqual(harness.find_listener(js2, 'web')['total'], 0, js2)
        # the CSV an operator reads says the same
        rows = [ln.split(',') for ln in self.lb['l1'].stats('show stat').splitlines()
                if ln.startswith('p,')]
        self.assertEqual({r[1]: int(r[6]) for r in rows},
                         {n: int(n == name) for n, _ in SERVERS}, rows)
        self.assertEqual(self.health('l1'), (200, 'ok'))
        self.assertEqual(self.health('l2'), (200, 'ok'))

    def test_instances_place_clients_alike(self):
        js = {r: self.lb[r].stats_json() for r in ('l1', 'l2')}
        digest = {r: next(p['mapping'] for p in js[r]['pools'] if p['name'] == 'p')
                  for r in js}
        self.assertRegex(digest['l1'], r'^[0-9a-f]{16}$')
        self.assertEqual(digest['l1'], digest['l2'],
                         'mapping differs though l2 only lists the servers in '
                         'another order')
        ips = sample_ips(SAMPLE_IPS)
        got = {r: self.placements(r, ips) for r in ('l1', 'l2')}
        differ = [ip for ip in ips if got['l1'][ip] != got['l2'][ip]]
        self.assertEqual(differ, [], 'placed differently: %s'
                         % ['%s %s/%s' % (ip, got['l1'][ip], got['l2'][ip])
                            for ip in differ[:10]])
        share = {n: sum(1 for ip in ips if got['l1'][ip] == n) for n, _ in SERVERS}
        for n, count in share.items():
            self.assertGreater(count, SAMPLE_IPS // 5, share)
        # and real clients land where `which` says
        for ip in CLIENT_IPS:
            self.assertEqual(self.request(source=ip), self.placements('l1', [ip])[ip])
        agree = self.tcplbctl_agree()
        print('[mapping %s on both, %d IPs placed alike%s] '
              % (digest['l1'], SAMPLE_IPS, agree), end='', flush=True)

    def tcplbctl_agree(self):
        """tools/tcplbctl -s L1 -s L2 agree p, when this tcplbctl has it."""
        helptext = subprocess.run([sys.executable, TCPLBCTL, '--help'],
                                  capture_output=True, text=True, timeout=10).stdout
        if 'agree' not in helptext:
            return ', tcplbctl agree: not there yet'
        r = subprocess.run([sys.executable, TCPLBCTL, '-s', self.lb['l1'].stats_socket,
                            '-s', self.lb['l2'].stats_socket, 'agree', 'p'],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, 'tcplbctl agree: %s%s' % (r.stdout, r.stderr))
        return ', tcplbctl agree: exit 0'

    def test_stopping_master_tcplb_moves_vip_within_3s(self):
        before = {ip: self.request(source=ip) for ip in CLIENT_IPS}
        accepted2 = self.accepted('l2')
        lb1 = self.lb['l1']
        self.random_phase()
        t0 = time.monotonic()
        lb1.signal(signal.SIGTERM)
        failures = []
        took = None
        while time.monotonic() - t0 < FAILOVER_BOUND + 3.0:
            t = time.monotonic()
            try:
                self.request(connect_timeout=0.25, timeout=1.0)
                took = time.monotonic() - t0
                break
            except OSError as e:
                failures.append(type(e).__name__)
            time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))
        self.assertIsNotNone(took, 'no client served %.0fs after SIGTERM; failures: %s'
                             % (FAILOVER_BOUND + 3.0, failures[-5:]))
        counts = ', '.join('%d %s' % (failures.count(k), k) for k in sorted(set(failures)))
        print('[failover after SIGTERM: %.3fs, %s] ' % (took, counts or 'no failure'),
              end='', flush=True)
        self.assertLess(took, FAILOVER_BOUND)
        self.assertEqual(lb1.wait(5), 0, lb1.log_tail())
        self.assertEqual(self.net.vip_holders(), ['l2'])
        self.assertGreater(self.accepted('l2'), accepted2)
        self.wait_output(self.keepalived['l1'], r'Entering FAULT STATE', 1.0)
        self.wait_output(self.keepalived['l2'], r'Entering MASTER STATE', 1.0)
        # source hashing: the clients keep their servers across the move
        after = {ip: self.request(source=ip) for ip in CLIENT_IPS}
        self.assertEqual(after, before)

    def test_drain_self_moves_vip_while_master_still_serves(self):
        self.request()
        accepted = {r: self.accepted(r) for r in ('l1', 'l2')}
        self.random_phase()
        t0 = time.monotonic()
        self.assertEqual(self.lb['l1'].stats('drain self').strip(), 'self draining')
        self.assertEqual(self.health('l1'), (503, 'draining'))
        refused = []
        lost = []
        served = []
        took = None
        while time.monotonic() - t0 < FAILOVER_BOUND + 3.0:
            t = time.monotonic()
            try:
                # a connect timeout above the first SYN retransmission (1 s):
                # a SYN sent while neither holds the VIP is answered by l2
                served.append(self.request(connect_timeout=3.0, timeout=1.0))
            except AnswerLost as e:
                lost.append('%s after %.3fs' % (e, time.monotonic() - t0))
            except OSError as e:
                refused.append('%s after %.3fs' % (e, time.monotonic() - t0))
            if took is None and self.accepted('l2') > accepted['l2']:
                took = time.monotonic() - t0
            if took is not None and len(served) >= 3 and time.monotonic() - t0 > took + 0.3:
                break
            time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))
        by_l1 = self.accepted('l1') - accepted['l1']
        by_l2 = self.accepted('l2') - accepted['l2']
        self.assertIsNotNone(took, 'l2 served nothing within %.0fs of drain self'
                             % (FAILOVER_BOUND + 3.0))
        print('[drain self: l2 serves after %.3fs; %d served by l1 while it '
              'drained, %d by l2, %d lost in flight] '
              % (took, by_l1 - len(lost), by_l2, len(lost)), end='', flush=True)
        # every connect succeeded; only the one request in flight at the
        # move may be lost (docs/scale-out.md says why)
        self.assertEqual(refused, [], 'a connect failed while the VIP moved')
        self.assertLessEqual(len(lost), 1, lost)
        self.assertEqual(by_l1 + by_l2, len(served) + len(lost))
        self.assertLess(took, FAILOVER_BOUND)
        self.assertEqual(self.net.vip_holders(), ['l2'])
        self.assertTrue(self.lb['l1'].running())
        self.assertEqual(self.health('l1'), (503, 'draining'))
        # enable self: l1 is healthy again and becomes the backup; with
        # nopreempt the VIP stays where it is
        self.assertEqual(self.lb['l1'].stats('enable self').strip(), 'self enabled')
        self.assertEqual(self.health('l1'), (200, 'ok'))
        out_before = self.keepalived['l1'].output().count('Entering BACKUP STATE')
        self.assertTrue(harness.wait_until(
            lambda: self.keepalived['l1'].output().count('Entering BACKUP STATE')
            > out_before, 3.0), tail(self.keepalived['l1'].out_path))
        self.assertEqual(self.net.vip_holders(), ['l2'])
        self.request()


class CheckScriptTest(harness.TcplbTestCase):
    """tools/scale-out/check-tcplb against one tcplb on loopback: no
    namespaces needed."""

    CHECK = os.path.join(harness.REPO, 'tools', 'scale-out', 'check-tcplb')

    def check(self, lb_addr, *opts):
        return subprocess.run([self.CHECK] + list(opts) + [lb_addr],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=10).returncode

    def test_check_script_follows_health(self):
        if not os.access(CURL, os.X_OK):
            self.fail('%s not found: run `make test-deps`' % CURL)
        addr = '%s:%d' % (harness.HOST, harness.free_port())
        cfg = self.config(stats_http=addr)
        cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', self.backend(harness.HttpBackend, 'a'))])
        lb = self.tcplb(cfg)
        strict, lenient = (), ('--any-server-state',)
        states = []
        for setup, want in ((None, (0, 0)),
                            ('disable server p/a', (1, 0)),     # no server up
                            ('enable server p/a', (0, 0)),
                            ('drain self', (1, 1)),
                            ('enable self', (0, 0))):
            if setup:
                lb.stats(setup)
            got = (self.check(addr, *strict), self.check(addr, *lenient))
            states.append((setup, got))
            self.assertEqual(got, want, states)
        self.assertEqual(lb.stop(), 0)
        self.assertEqual((self.check(addr, *strict), self.check(addr, *lenient)),
                         (1, 1), 'tcplb gone')


if __name__ == '__main__':
    unittest.main()
