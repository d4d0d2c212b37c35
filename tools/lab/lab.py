#!/usr/bin/env python3
"""lab.py -- the skew lab: three real nginx + php-fpm pools behind tcplb,
driven by skewload, replaying the two incidents of docs/lab.md.

    python3 tools/lab/lab.py [--out DIR] [--doc FILE]
                             [--scenario slow|hot|fail|restart|agent|all]
                             [--quick] [--keep] [--tcplb BIN] [--skewload BIN]

Scenario "slow" (incident 1): one pool burns CPU on every request; round
robin against leastconn, with per server counts, latency and the CPU its
php-fpm workers used. Scenario "hot" (incident 2): one client IP at 10x the
others; round robin, persist = source, and scheduler = source with
balance_factor = 125, with per server counts, imbalance, how many clients
kept one server, and the per client counts nginx itself logged (tcplb sends
the PROXY protocol, so nginx sees the real client address).

Writes DIR/report.md (Markdown tables, the charts linked), DIR/results.json
and one SVG chart per run (DIR defaults to docs/lab); with --doc FILE it
also replaces the part of FILE between the lines `<!-- lab:begin -->` and
`<!-- lab:end -->` with the report, its chart links made relative to FILE.

Nothing system-wide is touched: every nginx and php-fpm runs as a child of
this script with its config, pid file, socket and logs in a temp dir, on
free 127.0.0.1 ports, and is stopped by its PID. Python 3 standard library
only; tests/integration/test_lab.py imports this file."""

import argparse
import csv
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
# acting.py (scenarios 3-5) imports this module as `lab`: the same one
# when this file runs as a script
sys.modules.setdefault('lab', sys.modules[__name__])

REPO = os.path.dirname(os.path.dirname(LAB_DIR))
APP_DIR = os.path.join(LAB_DIR, 'app')
HOST = '127.0.0.1'

# the free-port finder is shared with the test harness
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from loopback import exchange, free_port  # noqa: E402

START_TIMEOUT = 10.0        # seconds for a daemon to answer after its start
STOP_TIMEOUT = 10.0         # SIGTERM -> gone within this, else SIGKILL
CLK_TCK = os.sysconf('SC_CLK_TCK')
POOL_NAMES = ('web1', 'web2', 'web3')
SLOW_POOL = 'web3'          # the one that burns CPU in scenario 1
HOT_CLIENT = '127.0.0.2'    # skewload's first client: the hot one with hot:K

# Run sizes. FULL is what `make lab` runs (a minute or two in all);
# QUICK is for a smoke run and for tests/integration/test_lab.py. Every page
# costs page_cpu_ms of CPU and then waits page_wait_ms (its "database"); in
# scenario 1 the slow pool burns burn_ms more CPU per page.
FULL = {
    'page_cpu_ms': 0.3, 'page_wait_ms': 10.0, 'children': 4, 'tcplb_workers': 2,
    'slow_duration': 15.0, 'slow_concurrency': 16, 'slow_clients': 30,
    'burn_ms': 25.0,
    'hot_requests': 9000, 'hot_duration': 60.0, 'hot_concurrency': 12,
    'hot_clients': 30, 'hot_factor': 10,
    # scenarios 3-5 (acting.py)
    'act_concurrency': 12, 'act_clients': 30,
    'fail_duration': 30.0, 'fail_stop_at': 8.0, 'fail_back_at': 18.0,
    'fail_ejection': '5s',
    'restart_duration': 45.0, 'restart_stop_at': 5.0, 'restart_back_at': 10.0,
    'restart_slowstart': '20s', 'restart_first': 100,
    'warmup_ms': 10.0, 'warmup_s': 15.0,
    'agent_duration': 20.0, 'agent_children': 1,
    'seed': 6,
}
QUICK = dict(FULL, slow_duration=4.0, hot_requests=2000, hot_duration=20.0,
             fail_duration=12.0, fail_stop_at=3.0, fail_back_at=8.0, fail_ejection='2s',
             restart_duration=15.0, restart_stop_at=3.0, restart_back_at=5.0,
             restart_slowstart='5s', restart_first=30, warmup_s=5.0, agent_duration=8.0)
SCENARIOS = ('slow', 'hot', 'fail', 'restart', 'agent')


class LabError(Exception):
    """Something the lab needs is missing or did not start; the message says
    what and, where it can, how to fix it."""


# ---------------------------------------------------------------- programs

def find_nginx():
    """Path of the nginx binary, or None."""
    for cand in (shutil.which('nginx'), '/usr/sbin/nginx'):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def find_php_fpm():
    """Path of a php-fpm binary (Debian names it php-fpmX.Y), or None."""
    names = ['php-fpm8.2', 'php-fpm']
    for cand in [shutil.which(n) for n in names] + ['/usr/sbin/php-fpm8.2']:
        if cand and os.access(cand, os.X_OK):
            return cand
    try:
        found = sorted(f for f in os.listdir('/usr/sbin')
                       if re.fullmatch(r'php-fpm\d+\.\d+', f))
    except OSError:
        found = []
    return os.path.join('/usr/sbin', found[-1]) if found else None


def missing_programs():
    """The names among nginx and php-fpm that cannot be found."""
    missing = []
    if not find_nginx():
        missing.append('nginx')
    if not find_php_fpm():
        missing.append('php-fpm')
    return missing


def program_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return '?'
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else '?'


# ---------------------------------------------------------------- ports and /proc



def is_listening(port):
    """True once a socket listens on 127.0.0.1:port (or any address), from
    /proc/net/tcp. The kernel lists listening sockets first, so the read
    stops at the first other line: on a machine with tens of thousands of
    TIME_WAIT sockets it costs nothing, and it opens no connection that a
    daemon would count or log."""
    try:
        f = open('/proc/net/tcp')
    except OSError:
        return False
    with f:
        next(f, None)
        for line in f:
            fields = line.split()
            if len(fields) < 4 or fields[3] != '0A':
                break
            if int(fields[1].rsplit(':', 1)[1], 16) == port:
                return True
    return False


def proc_stat(pid):
    """(ppid, utime + stime in ticks, start time) of pid, or None if gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: split after its ')'
    fields = data[data.rindex(')') + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])


def children_of(pid):
    """PIDs whose parent is pid."""
    kids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[0] == pid:
                kids.append(int(entry))
    return sorted(kids)


def wait_for(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------- processes

class Proc:
    """A daemon run in the foreground as our child, its output in a file.
    stop() ends it by PID -- and any child of it still there afterwards, by
    the PID and start time noted just before."""

    def __init__(self, name, argv, out_path):
        self.name = name
        self.argv = argv
        self.out_path = out_path
        self.proc = None

    def start(self):
        with open(self.out_path, 'ab') as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         close_fds=True, start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def output_tail(self, n=15):
        try:
            with open(self.out_path, 'rb') as f:
                lines = f.read().decode('utf-8', 'replace').splitlines()
        except OSError:
            return ''
        return '\n'.join(lines[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            kids = [(k, proc_stat(k)) for k in children_of(self.proc.pid)]
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            for kid, before in kids:
                now = proc_stat(kid)
                if before and now and now[2] == before[2]:
                    try:
                        os.kill(kid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        return self.proc.returncode


def http_get(port, path='/', proxy_from=None, timeout=5.0):
    """One GET on 127.0.0.1:port; with proxy_from an IPv4 address, a PROXY
    protocol v1 header from it comes first. Returns (status, headers dict
    with lower-case names, body)."""
    req = b''
    if proxy_from:
        req += ('PROXY TCP4 %s %s 40000 %d\r\n' % (proxy_from, HOST, port)).encode()
    req += ('GET %s HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n' % path).encode()
    data = exchange(port, req, timeout)
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    if not lines or not lines[0].startswith('HTTP/'):
        raise LabError('not an HTTP answer from port %d: %r' % (port, data[:200]))
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    if headers.get('transfer-encoding', '').lower() == 'chunked':
        body = _unchunk(body)
    return status, headers, body


def _unchunk(body):
    out = b''
    while body:
        size_line, _, rest = body.partition(b'\r\n')
        size = int(size_line.split(b';')[0] or b'0', 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


# ---------------------------------------------------------------- a pool

def _fill(template, values):
    with open(os.path.join(LAB_DIR, template)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace('@%s@' % key, str(value))
    left = re.findall(r'@[A-Z_]+@', text)
    if left:
        raise LabError('%s: unfilled %s' % (template, ', '.join(sorted(set(left)))))
    return text


class Pool:
    """One backend "server": an nginx (one worker) in front of a php-fpm
    (pm = static, `children` workers) on a port of its own, all in root/NAME.
    Every request to / burns burn_ms of CPU, then waits wait_ms (index.php);
    with proxy_protocol nginx expects tcplb's PROXY header and logs the
    client address it carries."""

    def __init__(self, root, name, burn_ms=0, children=3, proxy_protocol=True,
                 wait_ms=0, warmup=(0, 0)):
        self.name = name
        self.dir = os.path.join(root, name)
        self.burn_ms = float(burn_ms)
        self.wait_ms = float(wait_ms)
        self.children = int(children)
        self.warmup_ms, self.warmup_s = (float(x) for x in warmup)
        self.proxy_protocol = proxy_protocol
        self.port = free_port()
        self.status_port = free_port()
        self.fpm_port = free_port()
        self.nginx = None
        self.fpm = None
        self.access_log = os.path.join(self.dir, 'access.log')

    @property
    def addr(self):
        return '%s:%d' % (HOST, self.port)

    def start(self):
        """Starts php-fpm and nginx and waits until the pool answers."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self):
        """Writes the configs and starts php-fpm and nginx, without waiting
        (nginx needs php-fpm only once a request comes)."""
        nginx_bin, fpm_bin = find_nginx(), find_php_fpm()
        if not nginx_bin or not fpm_bin:
            raise LabError('missing %s: run `make test-deps` (tools/deps.sh test '
                           'installs them)' % ' and '.join(missing_programs()))
        root = os.geteuid() == 0
        for sub in ('', 'tmp'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.dir, 'php-fpm.conf'), 'w') as f:
            f.write(_fill('php-fpm.conf.in', {
                'DIR': self.dir, 'NAME': self.name, 'CHILDREN': self.children,
                'FPM_PORT': self.fpm_port,
                # as root php-fpm wants -R and a user for its workers
                'USER': 'user = root\ngroup = root' if root else ''}))
        with open(os.path.join(self.dir, 'nginx.conf'), 'w') as f:
            f.write(_fill('nginx.conf.in', {
                'DIR': self.dir, 'NAME': self.name, 'PORT': self.port,
                'STATUS_PORT': self.status_port, 'FPM_PORT': self.fpm_port,
                'APP': APP_DIR, 'BURN_MS': '%g' % self.burn_ms,
                'WAIT_MS': '%g' % self.wait_ms,
                'WARMUP_MS': '%g' % self.warmup_ms, 'WARMUP_S': '%g' % self.warmup_s,
                'PROXY_PROTOCOL': 'proxy_protocol' if self.proxy_protocol else '',
                'USER': 'user root;' if root else ''}))

        self.start_fpm()
        self.nginx = Proc(self.name + '/nginx', [
            nginx_bin, '-p', self.dir + '/', '-c', os.path.join(self.dir, 'nginx.conf'),
            '-e', os.path.join(self.dir, 'error.log'), '-g', 'daemon off;'],
            os.path.join(self.dir, 'nginx.out')).start()

    def start_fpm(self):
        """Starts php-fpm alone (with the config launch() wrote): a pool whose
        php-fpm was stopped comes back, its opcache cold."""
        argv = [find_php_fpm(), '-F', '-y', os.path.join(self.dir, 'php-fpm.conf'),
                '-p', self.dir]
        if os.geteuid() == 0:
            argv.append('-R')
        self.fpm = Proc(self.name + '/php-fpm', argv,
                        os.path.join(self.dir, 'php-fpm.out')).start()

    def stop_fpm(self):
        """Stops php-fpm only: nginx stays and answers 502 at once, the fast
        failure that leastconn prefers."""
        if self.fpm is not None:
            self.fpm.stop()

    def wait_fpm(self):
        """Waits until php-fpm has its workers and the pool answers."""
        if not wait_for(lambda: is_listening(self.fpm_port) and
                        len(children_of(self.fpm.pid)) >= self.children, START_TIMEOUT):
            raise LabError('%s: php-fpm did not come back:\n%s' % (
                self.name, _tail(self.dir, 'php-fpm.log')))
        self.check()

    @property
    def status_url(self):
        return 'http://%s:%d/fpm-status' % (HOST, self.status_port)

    def wait_ready(self):
        """Waits for php-fpm's port and workers and nginx's port, then
        checks one request; LabError with the logs' tails if any fails."""
        if not wait_for(lambda: is_listening(self.fpm_port) or not self.fpm.alive(),
                        START_TIMEOUT) or not self.fpm.alive():
            raise LabError('%s: php-fpm did not start:\n%s\n%s' % (
                self.name, self.fpm.output_tail(), _tail(self.dir, 'php-fpm.log')))
        if not wait_for(lambda: len(children_of(self.fpm.pid)) >= self.children,
                        START_TIMEOUT):
            raise LabError('%s: php-fpm has %d of %d workers' % (
                self.name, len(children_of(self.fpm.pid)), self.children))
        if not wait_for(lambda: is_listening(self.port) or not self.nginx.alive(),
                        START_TIMEOUT) or not self.nginx.alive():
            raise LabError('%s: nginx did not start on %s:\n%s\n%s' % (
                self.name, self.addr, self.nginx.output_tail(),
                _tail(self.dir, 'error.log')))
        self.check()

    def check(self):
        """One request straight to nginx (with a PROXY header when it wants
        one): the pool must answer 200 with its own name."""
        try:
            status, headers, body = http_get(
                self.port, proxy_from=HOST if self.proxy_protocol else None)
        except OSError as e:
            raise LabError('%s: no answer from nginx on %s: %s' % (self.name, self.addr, e))
        if status != 200 or headers.get('x-backend') != self.name or \
                body.decode('utf-8', 'replace').split('\n')[0] != self.name:
            raise LabError('%s: unexpected answer %d %r %r\n%s' % (
                self.name, status, headers, body[:200], _tail(self.dir, 'error.log')))

    def worker_pids(self):
        return children_of(self.fpm.pid) if self.fpm and self.fpm.alive() else []

    def cpu_ticks(self):
        """utime + stime of the php-fpm workers (not the master, which only
        supervises), in clock ticks."""
        total = 0
        for pid in self.worker_pids():
            st = proc_stat(pid)
            if st:
                total += st[1]
        return total

    def log_offset(self):
        try:
            return os.path.getsize(self.access_log)
        except OSError:
            return 0

    def mark_cold(self):
        """From now its pages pay the warm-up (index.php, warmup=(ms, s))."""
        with open(os.path.join(self.dir, 'cold'), 'w') as f:
            f.write('%.6f' % time.time())

    def log_lines(self, since):
        """nginx's access log lines after byte since ([] without a log)."""
        try:
            with open(self.access_log, 'rb') as f:
                f.seek(since)
                return f.read().decode('utf-8', 'replace').splitlines()
        except OSError:
            return []

    def log_requests(self, since):
        """[(when, request_time ms, status)] from nginx's access log after
        byte since (when: $msec, the last field)."""
        out = []
        for line in self.log_lines(since):
            fields = line.split()
            try:
                out.append((float(fields[-1]), float(fields[3]) * 1000, int(fields[2])))
            except (IndexError, ValueError):
                pass
        return out

    def log_clients(self, since):
        """{client IP: requests} from nginx's access log after byte since:
        the first field is $remote_addr, the client address that the PROXY
        protocol header carried."""
        counts = {}
        for line in self.log_lines(since):
            fields = line.split(' ', 1)
            if fields and fields[0]:
                counts[fields[0]] = counts.get(fields[0], 0) + 1
        return counts

    def stop(self):
        # nginx first, so nothing new reaches php-fpm while it stops
        for p in (self.nginx, self.fpm):
            if p is not None:
                p.stop()


def _tail(directory, name, n=15):
    try:
        with open(os.path.join(directory, name), 'rb') as f:
            return '\n'.join(f.read().decode('utf-8', 'replace').splitlines()[-n:])
    except OSError:
        return ''


class Pools:
    """The three pools web1..web3, started together, stopped together
    (also when one fails to start)."""

    def __init__(self, root, burn=None, children=3, proxy_protocol=True, wait_ms=0,
                 warmup=(0, 0)):
        burn = burn or {}
        per = children if isinstance(children, dict) else {n: children for n in POOL_NAMES}
        self.pools = [Pool(root, n, burn.get(n, 0), per.get(n, 3), proxy_protocol, wait_ms,
                           warmup) for n in POOL_NAMES]

    def get(self, name):
        return next(p for p in self.pools if p.name == name)

    def start(self):
        try:
            for p in self.pools:
                p.launch()
            for p in self.pools:
                p.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for p in self.pools:
            p.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def cpu_ticks(self):
        return {p.name: p.cpu_ticks() for p in self.pools}

    def log_offsets(self):
        return {p.name: p.log_offset() for p in self.pools}

    def log_clients(self, offsets):
        """{server: {client IP: requests}} logged by nginx since offsets."""
        return {p.name: p.log_clients(offsets.get(p.name, 0)) for p in self.pools}


# ---------------------------------------------------------------- tcplb

def tcplb_bin():
    return os.environ.get('TCPLB_BIN') or os.path.join(REPO, 'build', 'tcplb')


def skewload_bin():
    """build/skewload next to the tcplb under test, else the repo's."""
    env = os.environ.get('SKEWLOAD_BIN')
    if env:
        return env
    near = os.path.join(os.path.dirname(os.path.abspath(tcplb_bin())), 'skewload')
    if os.access(near, os.X_OK):
        return near
    return os.path.join(REPO, 'build', 'skewload')


class Balancer:
    """tcplb in the foreground with one http listener and one pool `php`
    over the lab's pools, each server with send-proxy."""

    def __init__(self, root, name, pools, scheduler='roundrobin', persist='none',
                 balance_factor=0, workers=2, binary=None, pool_keys=None,
                 server_options=None):
        self.dir = root
        self.name = name
        self.port = free_port()
        self.stats_socket = os.path.join(root, name + '.sock')
        self.log_path = os.path.join(root, name + '-access.log')
        self.cfg_path = os.path.join(root, name + '.ini')
        self.binary = binary or tcplb_bin()
        lines = ['[global]', 'workers = %d' % workers,
                 'stats_socket = %s' % self.stats_socket,
                 'log = %s' % self.log_path, 'shutdown_timeout = 2s', '',
                 '[listener web]', 'bind = %s:%d' % (HOST, self.port),
                 'pool = php', 'mode = http', '',
                 '[pool php]', 'scheduler = %s' % scheduler]
        for p in pools:
            lines.append('server = %s %s%s%s' % (p.name, p.addr,
                                                  ' send-proxy' if p.proxy_protocol else '',
                                                  (server_options or {}).get(p.name, '')))
        keys = {'persist': persist, 'balance_factor': balance_factor, 'health': 'none',
                'connect_timeout': '1s', 'server_timeout': '30s', 'retries': 2}
        keys.update(pool_keys or {})
        lines += ['%s = %s' % kv for kv in keys.items()]
        self.config_text = '\n'.join(lines) + '\n'
        with open(self.cfg_path, 'w') as f:
            f.write(self.config_text)
        self.proc = None

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise LabError('%s not found: run `make` first' % self.binary)
        self.proc = Proc(self.name, [self.binary, '-f', self.cfg_path],
                         os.path.join(self.dir, self.name + '.out')).start()
        if not wait_for(lambda: is_listening(self.port) or not self.proc.alive(),
                        START_TIMEOUT) or not self.proc.alive():
            raise LabError('tcplb did not start:\n%s' % self.proc.output_tail())
        wait_for(lambda: os.path.exists(self.stats_socket), START_TIMEOUT)
        return self

    def stats(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(self.stats_socket)
            s.sendall(cmd.encode() + b'\n')
            s.shutdown(socket.SHUT_WR)
            data = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        return data.decode('utf-8', 'replace')

    def server_totals(self):
        return {n: f['total'] for n, f in self.server_figures().items()}

    def server_figures(self):
        """{server: {'total', 'requests', 'rt_p50', 'rt_p99', '5xx'}} as
        tcplb counted them (rt in ms, None without a sample)."""
        js = json.loads(self.stats('show stat json'))
        for pool in js.get('pools', []):
            if pool.get('name') == 'php':
                return {s['name']: {'total': s['total'], 'requests': s['requests'],
                                    'rt_p50': s['rt_ms']['p50'], 'rt_p99': s['rt_ms']['p99'],
                                    '5xx': s['responses']['5xx']}
                        for s in pool['servers']}
        return {}

    def events(self):
        """show events, as lines."""
        return [ln for ln in self.stats('show events').splitlines() if ln]

    def explain(self):
        """What `explain php` says: its lines, the closing empty one left out."""
        return [ln for ln in self.stats('explain php').splitlines() if ln]

    def stop(self):
        """SIGTERM; returns tcplb's exit code (0 expected)."""
        return self.proc.stop() if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- skewload

def run_skewload(port, args, svg=None, binary=None, timeout=300, raw=None):
    """Runs skewload --csv against 127.0.0.1:port with extra args; returns
    {'summary': {...}, 'servers': {name: row}, 'clients': [row...],
    'errors': {kind: n}, 'argv': [...], 'wall_s': s}. Rows are dicts of the
    CSV columns with numbers converted. raw: a file to keep the CSV in."""
    binary = binary or skewload_bin()
    if not os.access(binary, os.X_OK):
        raise LabError('%s not found: run `make` first' % binary)
    argv = [binary, '-t', '%s:%d' % (HOST, port), '--csv'] + list(args)
    if svg:
        argv += ['--svg', svg]
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    if raw:
        with open(raw, 'w') as f:
            f.write(out.stdout)
    if out.returncode != 0:
        raise LabError('skewload failed (%d): %s\n%s' % (out.returncode, ' '.join(argv),
                                                          out.stderr[-2000:]))
    res = parse_skewload_csv(out.stdout)
    res['argv'] = argv
    res['wall_s'] = wall
    return res


def relabel_svg(path, port, label):
    """skewload titles its chart with the target address; the lab's
    targets are throwaway ports, so name the configuration instead."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return
    text = text.replace('requests per server: %s:%d' % (HOST, port),
                        'requests per server: %s' % label, 1)
    with open(path, 'w') as f:
        f.write(text)


def _num(text):
    if text is None or text == '':
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def parse_skewload_csv(text):
    res = {'summary': {}, 'servers': {}, 'clients': [], 'errors': {}}
    rows = list(csv.reader(io.StringIO(text)))
    header = None
    for row in rows:
        if not row:
            continue
        if header is None and row[0] == 'kind':
            header = row
            continue
        if header is None:
            header = ['kind', 'name', 'value', 'share_pct', 'p50_ms', 'p99_ms',
                      'errors', 'servers']
        rec = dict(zip(header, row))
        kind = rec.get('kind')
        for k in ('value', 'share_pct', 'p50_ms', 'p99_ms', 'errors'):
            rec[k] = _num(rec.get(k))
        if kind == 'summary':
            res['summary'][rec['name']] = rec['value']
        elif kind == 'server':
            res['servers'][rec['name']] = rec
        elif kind == 'client':
            rec['pins'] = parse_pins(rec.get('servers', ''))
            res['clients'].append(rec)
        elif kind == 'error':
            res['errors'][rec['name']] = rec['value']
    return res


def parse_pins(text):
    """'web1:12 web2:3' -> {'web1': 12, 'web2': 3} ('+N more' is ignored)."""
    pins = {}
    for word in (text or '').split():
        name, sep, count = word.rpartition(':')
        if sep and count.isdigit():
            pins[name] = int(count)
    return pins


def imbalance(counts):
    """(max/mean, coefficient of variation) of a list of counts."""
    counts = list(counts)
    if not counts or not sum(counts):
        return 0.0, 0.0
    mean = sum(counts) / len(counts)
    var = sum((c - mean) ** 2 for c in counts) / len(counts)
    return max(counts) / mean, var ** 0.5 / mean


def stickiness(clients):
    """(share of clients that reached one server only, share of clients
    that sent at least 90 % of their requests to their busiest server, share
    of all requests that went to their client's busiest server), all 0..1."""
    clients = [c for c in clients if c['pins']]
    if not clients:
        return 0.0, 0.0, 0.0
    one = sum(1 for c in clients if len(c['pins']) == 1)
    mostly = sum(1 for c in clients
                 if max(c['pins'].values()) >= 0.9 * sum(c['pins'].values()))
    total = sum(sum(c['pins'].values()) for c in clients)
    main = sum(max(c['pins'].values()) for c in clients)
    return one / len(clients), mostly / len(clients), (main / total if total else 0.0)


# ---------------------------------------------------------------- scenarios

def _server_rows(sk, figures, names=POOL_NAMES):
    """Per server: requests (skewload), share, p50/p99, and what tcplb
    counted: connections, requests, its rt p50/p99."""
    rows = []
    total = sum((sk['servers'].get(n) or {}).get('value') or 0 for n in names)
    for n in names:
        s = sk['servers'].get(n) or {}
        f = figures.get(n) or {}
        count = s.get('value') or 0
        rows.append({'server': n, 'requests': count,
                     'share_pct': 100.0 * count / total if total else 0.0,
                     'p50_ms': s.get('p50_ms'), 'p99_ms': s.get('p99_ms'),
                     'errors': s.get('errors') or 0,
                     'tcplb_total': f.get('total'), 'tcplb_requests': f.get('requests'),
                     'tcplb_rt_p50': f.get('rt_p50'), 'tcplb_rt_p99': f.get('rt_p99')})
    return rows


# how scenario 1's clients connect: (label, extra skewload arguments)
SLOW_CLIENTS = (
    ('close', []),
    ('keep-alive', ['-k', '100']),
)
SLOW_SCHEDULERS = ('roundrobin', 'leastconn', 'leasttime')


def run_slow(root, out_dir, sizes, log=print, tcplb=None, skewload=None,
             schedulers=SLOW_SCHEDULERS, clients=SLOW_CLIENTS):
    """Scenario 1: round robin vs leastconn with one pool burning CPU, with
    a connection per request and with keep-alive clients."""
    result = {'name': 'slow', 'slow_pool': SLOW_POOL, 'burn_ms': sizes['burn_ms'],
              'page_cpu_ms': sizes['page_cpu_ms'], 'page_wait_ms': sizes['page_wait_ms'],
              'clients': sizes['slow_clients'], 'concurrency': sizes['slow_concurrency'],
              'duration': sizes['slow_duration'], 'runs': []}
    t0 = time.monotonic()
    burn = {n: sizes['page_cpu_ms'] for n in POOL_NAMES}
    burn[SLOW_POOL] += sizes['burn_ms']
    with Pools(os.path.join(root, 'slow'), burn=burn, children=sizes['children'],
               wait_ms=sizes['page_wait_ms']) as pools:
        for (how, how_args), sched in [(c, s) for c in clients for s in schedulers]:
            log('lab: slow backend, scheduler = %s, %s, %gs ...'
                % (sched, how, sizes['slow_duration']))
            slug = sched if how == 'close' else '%s-%s' % (sched, how)
            svg = os.path.join(out_dir, 's1-%s.svg' % slug) if out_dir else None
            with Balancer(os.path.join(root, 'slow'), 'tcplb-' + slug, pools.pools,
                          scheduler=sched, workers=sizes['tcplb_workers'],
                          binary=tcplb) as lb:
                cpu0, w0 = pools.cpu_ticks(), time.monotonic()
                sk = run_skewload(lb.port, [
                    '-d', str(sizes['slow_duration']), '-n', '100000000',
                    '-c', str(sizes['slow_concurrency']),
                    '--clients', str(sizes['slow_clients']), '--skew', 'uniform',
                    '--seed', str(sizes['seed']), '--timeout', '10000'] + how_args,
                    svg=svg, binary=skewload,
                    raw=os.path.join(root, 'slow', 's1-%s.csv' % slug))
                cpu1, wall = pools.cpu_ticks(), time.monotonic() - w0
                figures = lb.server_figures()
                explained = lb.explain()
                rc = lb.stop()
            if svg:
                relabel_svg(svg, lb.port, 'scheduler = %s, %s, %s slow'
                            % (sched, how, SLOW_POOL))
            rows = _server_rows(sk, figures)
            for r in rows:
                ticks = cpu1[r['server']] - cpu0[r['server']]
                r['cpu_s'] = ticks / CLK_TCK
                r['cpu_pct'] = 100.0 * r['cpu_s'] / wall if wall else 0.0
                r['cpu_ms_per_req'] = 1000.0 * r['cpu_s'] / r['requests'] if r['requests'] else 0.0
            ratio, cv = imbalance(r['requests'] for r in rows)
            result['runs'].append({
                'scheduler': sched, 'clients': how, 'explain': explained,
                'servers': rows, 'svg': os.path.basename(svg) if svg else None,
                'requests': sk['summary'].get('requests'), 'ok': sk['summary'].get('ok'),
                'req_per_s': sk['summary'].get('req_per_s'),
                'p50_ms': sk['summary'].get('p50_ms'), 'p99_ms': sk['summary'].get('p99_ms'),
                'elapsed_s': sk['summary'].get('elapsed_s'),
                'imbalance': ratio, 'cv': cv, 'errors': sk['errors'],
                'tcplb_exit': rc, 'argv': _short_argv(sk['argv'])})
    result['wall_s'] = time.monotonic() - t0
    return result


# (label, scheduler, persist, balance_factor); LONG_LABELS spell them out
HOT_CONFIGS = (
    ('roundrobin', 'roundrobin', 'none', 0),
    ('persist=source', 'roundrobin', 'source', 0),
    ('source+bf125', 'source', 'none', 125),
)
LONG_LABELS = {
    'roundrobin': 'scheduler = roundrobin',
    'persist=source': 'scheduler = roundrobin, persist = source',
    'source+bf125': 'scheduler = source, balance_factor = 125',
}


def run_hot(root, out_dir, sizes, log=print, tcplb=None, skewload=None,
            configs=HOT_CONFIGS, pools=None):
    """Scenario 2: one client IP at hot_factor x the others, under each of
    configs. pools: already started Pools to use (else its own)."""
    result = {'name': 'hot', 'hot_client': HOT_CLIENT, 'factor': sizes['hot_factor'],
              'clients': sizes['hot_clients'], 'requests': sizes['hot_requests'],
              'concurrency': sizes['hot_concurrency'],
              'page_cpu_ms': sizes['page_cpu_ms'], 'page_wait_ms': sizes['page_wait_ms'],
              'runs': []}
    t0 = time.monotonic()
    own = pools is None
    run_dir = os.path.join(root, 'hot') if own else root
    if own:
        pools = Pools(os.path.join(root, 'hot'), children=sizes['children'],
                      burn={n: sizes['page_cpu_ms'] for n in POOL_NAMES},
                      wait_ms=sizes['page_wait_ms']).start()
    try:
        for label, sched, persist, bf in configs:
            log('lab: hot client, %s, %d requests ...' % (label, sizes['hot_requests']))
            slug = label.replace('=', '-').replace('+', '-')
            svg = os.path.join(out_dir, 's2-%s.svg' % slug) if out_dir else None
            offsets = pools.log_offsets()
            with Balancer(run_dir, 'tcplb-' + slug,
                          pools.pools, scheduler=sched, persist=persist,
                          balance_factor=bf, workers=sizes['tcplb_workers'],
                          binary=tcplb) as lb:
                sk = run_skewload(lb.port, [
                    '-n', str(sizes['hot_requests']), '-d', str(sizes['hot_duration']),
                    '-c', str(sizes['hot_concurrency']),
                    '--clients', str(sizes['hot_clients']),
                    '--skew', 'hot:%d' % sizes['hot_factor'],
                    '--seed', str(sizes['seed']), '--timeout', '10000'],
                    svg=svg, binary=skewload,
                    raw=os.path.join(run_dir, 's2-%s.csv' % slug))
                figures = lb.server_figures()
                explained = lb.explain()
                rc = lb.stop()
            if svg:
                relabel_svg(svg, lb.port, LONG_LABELS.get(label, label))
            # nginx writes its log line as a request ends: by now all are in
            seen = pools.log_clients(offsets)
            rows = _server_rows(sk, figures)
            ratio, cv = imbalance(r['requests'] for r in rows)
            kept_one, mostly_one, main_share = stickiness(sk['clients'])
            hot = next((c for c in sk['clients'] if c['name'] == HOT_CLIENT), None)
            result['runs'].append({
                'label': label, 'scheduler': sched, 'persist': persist,
                'balance_factor': bf, 'servers': rows, 'explain': explained,
                'svg': os.path.basename(svg) if svg else None,
                'requests': sk['summary'].get('requests'), 'ok': sk['summary'].get('ok'),
                'req_per_s': sk['summary'].get('req_per_s'),
                'elapsed_s': sk['summary'].get('elapsed_s'),
                'imbalance': ratio, 'cv': cv,
                'skewload_imbalance': sk['summary'].get('imbalance'),
                'kept_one_pct': 100.0 * kept_one, 'mostly_one_pct': 100.0 * mostly_one,
                'main_server_pct': 100.0 * main_share,
                'hot_requests': hot['value'] if hot else 0,
                'hot_pins': hot['pins'] if hot else {},
                'nginx_clients': nginx_client_table(seen),
                'nginx_total': sum(sum(v.values()) for v in seen.values()),
                'errors': sk['errors'], 'tcplb_exit': rc,
                'argv': _short_argv(sk['argv'])})
    finally:
        if own:
            pools.stop()
    result['wall_s'] = time.monotonic() - t0
    return result


def nginx_client_table(seen):
    """[(ip, total, {server: n})] busiest first, from {server: {ip: n}}."""
    per_ip = {}
    for server, counts in seen.items():
        for ip, n in counts.items():
            per_ip.setdefault(ip, {})[server] = n
    rows = [(ip, sum(d.values()), d) for ip, d in per_ip.items()]
    rows.sort(key=lambda r: (-r[1], tuple(int(x) for x in r[0].split('.'))
                             if re.fullmatch(r'[\d.]+', r[0]) else (0,)))
    return rows


def _short_argv(argv):
    """skewload's argv with paths inside the repo made relative to it."""
    return [os.path.relpath(a, REPO) if a.startswith(REPO + os.sep) else a
            for a in argv]


# ---------------------------------------------------------------- report

def _f(x, digits=1):
    return '-' if x is None else ('%.*f' % (digits, x))


def _md_table(header, rows):
    out = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join(' ---: ' if i else ' --- ' for i in range(len(header))) + '|']
    for r in rows:
        out.append('| ' + ' | '.join(str(c) for c in r) + ' |')
    return '\n'.join(out)


def _cmd(argv):
    return ' '.join(a if re.fullmatch(r'[\w./:=+-]+', a) else "'%s'" % a for a in argv)


def render_slow(res, img_prefix=''):
    out = ['### Scenario 1: a slow backend',
           '',
           'Every page costs %g ms of CPU and waits %g ms; on %s it burns %g ms '
           'more CPU first (a tight loop of `microtime()` and `gettimeofday()` '
           'calls). %d client IPs, uniform, %d requests in flight, %g s per run: '
           'each scheduler with a connection per request (`close`) and with '
           'keep-alive clients (`keep-alive`: 100 requests per connection, '
           '`skewload -k 100`). "CPU %% of a core" is the pool\'s php-fpm CPU '
           'time over the run\'s wall time: the analogue of the incident\'s '
           'load average. "tcplb conns", "tcplb requests" and "tcplb rt" are '
           'tcplb\'s own counts (`show stat json`); rt is its response time, '
           'request sent to first answer byte, over the last minute.'
           % (res['page_cpu_ms'], res['page_wait_ms'], res['slow_pool'], res['burn_ms'],
              res['clients'], res['concurrency'], res['duration']), '']
    rows = []
    for run in res['runs']:
        for r in run['servers']:
            rows.append(['`%s`' % run['scheduler'], run.get('clients', 'close'),
                         r['server'] + (' (slow)' if r['server'] == res['slow_pool'] else ''),
                         r['requests'], _f(r['share_pct']), r.get('tcplb_total'),
                         r.get('tcplb_requests'), _f(r.get('tcplb_rt_p50')),
                         _f(r.get('tcplb_rt_p99')), _f(r['p99_ms']),
                         _f(r['cpu_pct'], 0), _f(r['cpu_ms_per_req'], 2)])
    out.append(_md_table(['scheduler', 'clients', 'server', 'requests', 'share %',
                          'tcplb conns', 'tcplb requests', 'tcplb rt p50 ms',
                          'tcplb rt p99 ms', 'client p99 ms', 'CPU % of a core',
                          'CPU ms / request'], rows))
    out.append('')
    rows = [['`%s`' % r['scheduler'], r.get('clients', 'close'), r['ok'],
             _f(r['elapsed_s']), _f(r['req_per_s'], 0), _f(r['p50_ms']), _f(r['p99_ms']),
             _f(r['imbalance'], 2), _errors(r['errors'])] for r in res['runs']]
    out.append(_md_table(['scheduler', 'clients', 'answers', 'seconds', 'req/s',
                          'p50 ms', 'p99 ms', 'max/mean', 'errors'], rows))
    out.append('')
    out.append('What `explain php` said at the end of each run:')
    out.append('')
    for run in res['runs']:
        out.append('`%s`, %s:' % (run['scheduler'], run.get('clients', 'close')))
        out.append('')
        out.append('```')
        out.extend(run.get('explain') or ['(not asked)'])
        out.append('```')
        out.append('')
    for run in res['runs']:
        if run.get('svg'):
            out.append('![requests per server per second, %s, %s](%s%s)'
                       % (run['scheduler'], run.get('clients', 'close'), img_prefix,
                          run['svg']))
            out.append('')
    out.append(_interpret_slow(res))
    out.append('')
    return '\n'.join(out)


def _interpret_slow(res):
    by = {r['scheduler']: r for r in res['runs'] if r.get('clients', 'close') == 'close'}
    ka = {r['scheduler']: r for r in res['runs'] if r.get('clients') == 'keep-alive'}
    rr, lc = by.get('roundrobin'), by.get('leastconn')
    if not rr or not lc:
        return ''
    slow = res['slow_pool']
    keepalive = ''
    if ka.get('roundrobin'):
        k = ka['roundrobin']
        s = next(r for r in k['servers'] if r['server'] == slow)
        others = [r for r in k['servers'] if r['server'] != slow]
        keepalive = (' With keep-alive clients the connection counts say even less: '
                     'under round robin %s holds %s of the %s connections, about a third '
                     'like the others, and the requests split %s; only tcplb\'s rt '
                     '(p50 %.1f ms on %s against %s on the others) and `explain` '
                     '(`%s`) show the slow server.'
                     % (slow, s.get('tcplb_total'),
                        sum(r.get('tcplb_total') or 0 for r in k['servers']),
                        ' / '.join(str(r.get('tcplb_requests')) for r in k['servers']),
                        s.get('tcplb_rt_p50') or 0, slow,
                        ' and '.join('%.1f ms' % (r.get('tcplb_rt_p50') or 0)
                                     for r in others),
                        next((ln for ln in k.get('explain', [])
                              if ln.startswith('verdict:')), '?')))

    def srv(run, name):
        return next(r for r in run['servers'] if r['server'] == name)
    fast = [n for n in POOL_NAMES if n != slow]
    fast_p99 = max(srv(rr, n)['p99_ms'] or 0 for n in fast)

    def cpu(run):
        return ' / '.join('%.0f' % srv(run, n)['cpu_pct'] for n in POOL_NAMES)
    return ('Round robin gives %s its third (%.1f %%) however slow it is: its '
            'p99 is %.1f ms against at most %.1f ms on the others, and the '
            'pools\' php-fpm CPU (%% of a core, %s) reads %s -- equal counts, '
            'unequal load, the incident\'s picture. Leastconn sees %s\'s '
            'connections pile up and sends it %.1f %% of the requests instead; '
            'the CPU reads %s, throughput goes from %.0f to %.0f req/s and the '
            'overall p99 from %.1f to %.1f ms.'
            % (slow, srv(rr, slow)['share_pct'], srv(rr, slow)['p99_ms'] or 0,
               fast_p99, ' / '.join(POOL_NAMES), cpu(rr), slow,
               srv(lc, slow)['share_pct'], cpu(lc), rr['req_per_s'] or 0,
               lc['req_per_s'] or 0, rr['p99_ms'] or 0, lc['p99_ms'] or 0)) + keepalive + \
        _interpret_leasttime(res)


def _interpret_leasttime(res):
    """leasttime against leastconn on the same load, each client kind."""
    slow = res['slow_pool']
    parts = []
    for how in ('close', 'keep-alive'):
        runs = {r['scheduler']: r for r in res['runs'] if r.get('clients', 'close') == how}
        lc, lt = runs.get('leastconn'), runs.get('leasttime')
        if not lc or not lt:
            continue
        share = lambda run: next(r for r in run['servers'] if r['server'] == slow)['share_pct']
        parts.append('%s: %s gets %.1f %% of the requests under leasttime against %.1f %% '
                     'under leastconn, and the overall p99 is %.1f ms against %.1f ms '
                     '(%.2fx)' % (how, slow, share(lt), share(lc), lt['p99_ms'] or 0,
                                  lc['p99_ms'] or 0,
                                  (lt['p99_ms'] or 0) / lc['p99_ms'] if lc['p99_ms'] else 0))
    if not parts:
        return ''
    return (' Leasttime weighs each server\'s connections by its response time, so it '
            'needs no pile-up to see the slow one -- ' + '; '.join(parts) + '.')


def _errors(errs):
    errs = {k: v for k, v in (errs or {}).items() if v}
    return ', '.join('%s %d' % kv for kv in sorted(errs.items())) or '0'


def render_hot(res, img_prefix=''):
    out = ['### Scenario 2: one hot client',
           '',
           '%d client IPs (127.0.0.2 …), %s at %dx each of the others: %d '
           'requests, %d in flight, a connection per request, the same sequence '
           'of clients (one seed) under each configuration. Every page costs '
           '%g ms of CPU and waits %g ms, on every pool. %s.'
           % (res['clients'], res['hot_client'], res['factor'], res['requests'],
              res['concurrency'], res['page_cpu_ms'], res['page_wait_ms'],
              '; '.join('`%s`: %s' % (r['label'], LONG_LABELS.get(r['label'], r['label']))
                        for r in res['runs'])), '']
    rows = []
    for run in res['runs']:
        cells = ['`%s`' % run['label']]
        for r in run['servers']:
            cells.append('%d (%s %%)' % (r['requests'], _f(r['share_pct'])))
        cells += [_f(run['imbalance'], 2), _f(run['cv'], 2),
                  _f(run['kept_one_pct'], 0) + ' %', _f(run['mostly_one_pct'], 0) + ' %',
                  _f(run['main_server_pct'], 0) + ' %',
                  ' '.join('%s:%d' % kv for kv in sorted(run['hot_pins'].items(),
                                                         key=lambda kv: -kv[1])),
                  _errors(run['errors'])]
        rows.append(cells)
    out.append(_md_table(['configuration'] + list(POOL_NAMES) +
                         ['max/mean', 'CV', 'clients on 1 server',
                          'clients ≥ 90 % on 1 server', 'requests on own server',
                          'hot client went to', 'errors'],
                         rows))
    out.append('')
    out.append('What nginx logged: `$remote_addr` from the PROXY protocol '
               'header that tcplb sends (`server ... send-proxy`; nginx '
               '`listen ... proxy_protocol`, `real_ip_header proxy_protocol`). '
               'The busiest client IPs of each run:')
    out.append('')
    rows = []
    for run in res['runs']:
        for ip, total, per in run['nginx_clients'][:3]:
            rows.append(['`%s`' % run['label'], ip, total] +
                        [per.get(n, 0) for n in POOL_NAMES])
        rows.append(['`%s`' % run['label'], '(all %d IPs)' % len(run['nginx_clients']),
                     run['nginx_total']] +
                    [sum(per.get(n, 0) for _, _, per in run['nginx_clients'])
                     for n in POOL_NAMES])
    out.append(_md_table(['configuration', 'client IP (nginx log)', 'requests'] +
                         list(POOL_NAMES), rows))
    out.append('')
    out.append('What `explain php` said at the end of each run:')
    out.append('')
    for run in res['runs']:
        out.append('`%s`:' % run['label'])
        out.append('')
        out.append('```')
        out.extend(run.get('explain') or ['(not asked)'])
        out.append('```')
        out.append('')
    for run in res['runs']:
        out.append('![requests per server per second, %s](%s%s)'
                   % (run['label'], img_prefix, run['svg']))
        out.append('')
    out.append(_interpret_hot(res))
    out.append('')
    return '\n'.join(out)


def _interpret_hot(res):
    by = {r['label']: r for r in res['runs']}
    rr, ps, bl = by.get('roundrobin'), by.get('persist=source'), by.get('source+bf125')
    if not (rr and ps and bl):
        return ''
    worst = max(ps['servers'], key=lambda r: r['requests'])
    return ('Round robin is even (max/mean %.2f) but no client keeps its server '
            '(%.0f %% of the requests land on a client\'s most frequent server, '
            'about what chance gives). `persist = source` keeps every client on '
            'one server, and %s, where the hot client landed, takes %.1f %% of '
            'all requests (max/mean %.2f). `scheduler = source` with '
            '`balance_factor = 125` stays within %.2f x the mean while %.0f %% '
            'of the requests still go to their client\'s own server; %.0f %% of '
            'the clients sent at least 90 %% of theirs there, and %s of the %d '
            'kept one server for every request. The hot client\'s connections over the cap spill to the next '
            'server in its fixed order (%s).'
            % (rr['imbalance'], rr['main_server_pct'], worst['server'],
               worst['share_pct'], ps['imbalance'], bl['imbalance'],
               bl['main_server_pct'], bl['mostly_one_pct'],
               round(bl['kept_one_pct'] * res['clients'] / 100.0) or 'none',
               res['clients'],
               ', '.join('%s %d' % kv for kv in sorted(bl['hot_pins'].items(),
                                                       key=lambda kv: -kv[1]))))


def machine_info():
    info = {'cpus': os.cpu_count(), 'kernel': platform.release(),
            'python': platform.python_version(),
            'nginx': program_version([find_nginx() or 'nginx', '-v']),
            'php_fpm': program_version([find_php_fpm() or 'php-fpm', '-v'])}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu'] = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info['loadavg_before'] = open('/proc/loadavg').read().split()[:3]
    except OSError:
        pass
    try:
        info['tcplb_commit'] = subprocess.run(
            ['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'],
            capture_output=True, text=True, timeout=5).stdout.strip() or '?'
    except (OSError, subprocess.TimeoutExpired):
        info['tcplb_commit'] = '?'
    return info


def render_report(results, img_prefix=''):
    m = results['machine']
    out = ['<!-- generated by tools/lab/lab.py (make lab) on %s -->' % results['date'], '',
           'Measured on %s: %s CPUs (%s), Linux %s, %s, %s, tcplb at %s; load '
           'average %s when the lab started. Each pool: nginx with one worker, '
           'php-fpm with %d static children. tcplb: %d workers, `mode = http`, '
           '`send-proxy` to every server. The lab took %.0f s.'
           % (results['date'], m.get('cpus'), m.get('cpu', '?'), m.get('kernel'),
              m.get('nginx', '?').replace('nginx version: ', ''),
              m.get('php_fpm', '?').split(' (')[0], m.get('tcplb_commit', '?'),
              ' '.join(m.get('loadavg_before', ['?'])), results['sizes']['children'],
              results['sizes']['tcplb_workers'], results['wall_s']), '']
    import acting
    renderers = {'slow': render_slow, 'hot': render_hot, 'fail': acting.render_fail,
                 'restart': acting.render_restart, 'agent': acting.render_agent}
    for sc in results['scenarios']:
        out.append(renderers[sc['name']](sc, img_prefix))
    out.append('The skewload command lines, for reproducing one run by hand '
               '(`-t` is the run\'s tcplb):')
    out.append('')
    out.append('```')
    for sc in results['scenarios']:
        for run in sc['runs']:
            out.append(_cmd(run['argv']))
    out.append('```')
    return '\n'.join(out) + '\n'


BEGIN, END = '<!-- lab:begin -->', '<!-- lab:end -->'


def update_doc(path, text):
    """Replaces what lies between the BEGIN and END lines of path."""
    with open(path) as f:
        doc = f.read()
    a, b = doc.find(BEGIN), doc.find(END)
    if a < 0 or b < a:
        raise LabError('%s: no %s ... %s block to fill' % (path, BEGIN, END))
    doc = doc[:a + len(BEGIN)] + '\n' + text + doc[b:]
    with open(path, 'w') as f:
        f.write(doc)


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(
        description='The skew lab: nginx + php-fpm pools behind tcplb, driven by '
                    'skewload, replaying the two incidents of docs/lab.md.')
    ap.add_argument('--out', default=os.path.join(REPO, 'docs', 'lab'),
                    help='where the report and charts go (default docs/lab)')
    ap.add_argument('--doc', help='also fill the lab:begin/lab:end block of this '
                                  'Markdown file (make lab: docs/lab.md)')
    ap.add_argument('--scenario', choices=SCENARIOS + ('all',), default='all',
                    help='one scenario (1 slow, 2 hot, 3 fail, 4 restart, 5 agent) '
                         'or all')
    ap.add_argument('--quick', action='store_true',
                    help='short runs (about 20 s in all) for a smoke test')
    ap.add_argument('--burn-ms', type=float,
                    help='extra CPU per page on the slow pool in scenario 1 '
                         '(default %g)' % FULL['burn_ms'])
    ap.add_argument('--keep', action='store_true',
                    help='keep the temp dir (configs, nginx/php-fpm/tcplb logs)')
    ap.add_argument('--tcplb', help='tcplb binary (default build/tcplb)')
    ap.add_argument('--skewload', help='skewload binary (default build/skewload)')
    ap.add_argument('--render', action='store_true',
                    help='run nothing: write the report (and --doc) again from '
                         'OUT/results.json, after a change to the text')
    args = ap.parse_args(argv)
    if args.render:
        out_dir = os.path.abspath(args.out)
        with open(os.path.join(out_dir, 'results.json')) as f:
            results = json.load(f)
        return write_report(results, out_dir, args.doc)

    missing = missing_programs()
    if missing:
        print('lab: %s not installed: run `make test-deps` (or `make lab`, '
              'which does)' % ' and '.join(missing), file=sys.stderr)
        return 2
    sizes = dict(QUICK if args.quick else FULL)
    if args.burn_ms is not None:
        sizes['burn_ms'] = args.burn_ms
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    root = tempfile.mkdtemp(prefix='tcplb-lab-')
    os.chmod(root, 0o755)
    results = {'date': time.strftime('%Y-%m-%d %H:%M %Z'), 'sizes': sizes,
               'machine': machine_info(), 'scenarios': []}
    t0 = time.monotonic()
    try:
        import acting
        runners = {'slow': run_slow, 'hot': run_hot, 'fail': acting.run_fail,
                   'restart': acting.run_restart, 'agent': acting.run_agent}
        for name in SCENARIOS:
            if args.scenario in (name, 'all'):
                results['scenarios'].append(runners[name](
                    root, out_dir, sizes, tcplb=args.tcplb, skewload=args.skewload))
    except LabError as e:
        print('lab: %s' % e, file=sys.stderr)
        print('lab: files kept in %s' % root, file=sys.stderr)
        return 1
    except BaseException:
        print('lab: files kept in %s' % root, file=sys.stderr)
        raise
    results['wall_s'] = time.monotonic() - t0
    if args.keep:
        print('lab: files kept in %s' % root)
    else:
        shutil.rmtree(root, ignore_errors=True)

    with open(os.path.join(out_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, sort_keys=True)
    return write_report(results, out_dir, args.doc)


def write_report(results, out_dir, doc):
    """OUT/report.md, and the lab:begin/lab:end block of doc if given."""
    report = render_report(results)
    with open(os.path.join(out_dir, 'report.md'), 'w') as f:
        f.write(report)
    print(report)
    if doc:
        doc_dir = os.path.dirname(os.path.abspath(doc))
        prefix = os.path.relpath(out_dir, doc_dir) + '/'
        update_doc(doc, render_report(results, prefix))
        print('lab: %s updated' % doc)
    print('lab: report in %s (%.0f s)' % (os.path.join(out_dir, 'report.md'),
                                          results['wall_s']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
