#!/usr/bin/env python3
"""bench.py — tcplb side by side with HAProxy, nginx stream and a direct
connection, on this machine's loopback (`make bench`, `make bench-quick`).

It owns everything it starts: three nginx HTTP backends, the balancers under
test, wrk and curl, each with its own config in one temporary directory,
each stopped by PID when the run ends, fails or is interrupted. It measures
and reports; it asserts nothing (benchmarks are not tests). Stdlib only.
See docs/performance.md for what each figure means.
"""

import argparse
import ctypes
import errno
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HOST = '127.0.0.1'

# the free-port finder is shared with the test harness
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from loopback import exchange, free_port  # noqa: E402
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLK_TCK = os.sysconf('SC_CLK_TCK')
BIG_SIZE = 64 << 20                  # the bulk file, 64 MiB
SMALL_BODY_LEN = 100                 # the req/s file, bytes
WRK_THREADS = 1
WRK_CONNS = 50
BULK_CLIENTS = 4
IDLE_SOURCES = ['127.0.0.%d' % i for i in range(2, 201)]
IDLE_BATCH = 256                     # connects in flight at once
IP_BIND_ADDRESS_NO_PORT = 24         # <linux/in.h>; not exported by socket
NOFILE_WANT = 20000
# Enough for the 9,000 idle connections: a balancer holds two descriptors
# per connection, and this machine caps a process at 20,000 open files.
LB_MAXCONN = 9800
HAPROXY_MAXPIPES = 128               # 2 fds each; keeps HAProxy under 20,000
PACKAGES = (('haproxy', 'haproxy'), ('nginx', 'nginx'), ('wrk', 'wrk'),
            ('curl', 'curl'), ('ss', 'iproute2'))

# The order targets run in, within every measurement of the first
# repetition (later ones rotate it), and the rows of every table. HAProxy (no splice) is the reference.
TARGETS = ('direct', 'tcplb', 'tcplb-http', 'tcplb-epoll', 'tcplb-uring', 'tcplb-reuseport',
           'haproxy', 'haproxy-splice', 'haproxy-splice-always', 'nginx')
# haproxy-splice-always, tcplb-uring and tcplb-reuseport only on request (--targets): on
# this machine splice-auto hardly ever splices the 64 MiB downloads, splice-response does;
# tcplb-uring is tcplb with its default io written out.
DEFAULT_TARGETS = ('direct', 'tcplb', 'tcplb-http', 'tcplb-epoll', 'haproxy', 'haproxy-splice',
                   'nginx')
REFERENCE = 'haproxy'
LABELS = {
    'direct': 'direct (no balancer, one backend)',
    'tcplb': 'tcplb (workers = 2)',
    'tcplb-http': 'tcplb mode http (observing requests)',
    'tcplb-epoll': 'tcplb, io = epoll',
    'tcplb-uring': 'tcplb, io = io_uring',
    'tcplb-reuseport': 'tcplb, accept_balance = off (the kernel\'s spread only)',
    'haproxy': 'HAProxy (mode tcp, nbthread 2)',
    'haproxy-splice': 'HAProxy + splice-auto',
    'haproxy-splice-always': 'HAProxy + splice-request/response',
    'nginx': 'nginx stream (2 workers)',
}

PROFILES = {
    # duration: wrk -d; warmup: wrk -d per target before the first
    # repetition; bulk: downloads of the 64 MiB file per curl client.
    'full': dict(reps=3, duration=8, warmup=2, bulk=16, idle=(1000, 9000)),
    'quick': dict(reps=1, duration=3, warmup=1, bulk=6, idle=(1000, 9000)),
}


class BenchError(Exception):
    """A setup step failed; the run stops with this message."""


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so cleanup runs as for Ctrl-C."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG: a child still running when this driver dies (even
    # by SIGKILL, where no cleanup runs) gets SIGTERM, on which nginx's
    # master also stops its workers. A session of its own keeps a Ctrl-C
    # at the terminal for this driver, which then stops everything in order.
    os.setsid()
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)


class Procs:
    """Every long-lived process this run started, stopped by PID."""

    def __init__(self):
        self.procs = []   # (name, Popen, log path)

    def start(self, name, argv, logpath, cwd=None):
        out = open(logpath, 'ab')
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, cwd=cwd,
                                 preexec_fn=_die_with_parent)
        finally:
            out.close()
        self.procs.append((name, p, logpath))
        return p

    def stop(self, p, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout. Harmless if already gone."""
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            except ProcessLookupError:
                pass
        self.procs = [e for e in self.procs if e[1] is not p]

    def stop_all(self):
        for _, p, _ in reversed(list(self.procs)):
            try:
                self.stop(p)
            except Exception as e:       # keep stopping the others
                log('bench: stopping pid %d: %s' % (p.pid, e))


def run(argv, timeout, check=True, **kw):
    """Runs a short command to completion within timeout seconds."""
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout,
                           preexec_fn=_die_with_parent, **kw)
    except subprocess.TimeoutExpired:
        raise BenchError('%s: no answer within %ds' % (' '.join(argv), timeout))
    out = r.stdout.decode('utf-8', 'replace')
    if check and r.returncode != 0:
        raise BenchError('%s: exit %d\n%s' % (' '.join(argv), r.returncode, out[-2000:]))
    return out


def tail(path, lines=20):
    try:
        with open(path, 'rb') as f:
            return b'\n'.join(f.read().splitlines()[-lines:]).decode('utf-8', 'replace')
    except OSError:
        return ''


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(ppid, utime + stime in clock ticks) of one process, all its threads."""
    with open('/proc/%d/stat' % pid) as f:
        data = f.read()
    rest = data[data.rindex(')') + 2:].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])


def proc_children(pid):
    kids = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            if proc_stat(int(name))[0] == pid:
                kids.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def cpu_us(pids):
    """User + system CPU time of pids (threads included), in microseconds."""
    total = 0
    for pid in pids:
        total += proc_stat(pid)[1]
    return total * 1e6 / CLK_TCK


def rss_bytes(pids):
    total = 0
    for pid in pids:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    total += int(line.split()[1]) * 1024
    return total


def ss(args):
    """Lines of `ss -Htn ARGS`. ss asks the kernel through netlink with the
    filter applied there: after a run /proc/net/tcp lists some 100,000
    TIME_WAIT sockets and takes half a second to read and parse."""
    out = run(['ss', '-Htn'] + args, 30)
    return [l.strip() for l in out.splitlines() if l.strip()]


def listening(port):
    return bool(ss(['-l', 'sport = :%d' % port]))


def established_at(ports):
    """ESTABLISHED sockets whose local port is in ports (server side).
    A multi-part dump can list a socket twice while the table changes:
    count distinct lines (one per 4-tuple)."""
    filt = '( %s )' % ' or '.join('sport = :%d' % p for p in sorted(ports))
    return len(set(ss(['state', 'established', filt])))



def wait_listening(name, p, port, logpath, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise BenchError('%s exited with %s at start:\n%s' % (name, p.returncode, tail(logpath)))
        if listening(port):
            return
        time.sleep(0.05)
    raise BenchError('%s not listening on %d after %ds:\n%s' % (name, port, timeout, tail(logpath)))


# ---------------------------------------------------------------- install

def install(allow):
    """apt-get installs what `command -v` cannot find, and the nginx stream
    module when it is missing; apt-get update runs once, only then."""
    missing = [pkg for cmd, pkg in PACKAGES
               if subprocess.run(['sh', '-c', 'command -v ' + cmd],
                                 stdout=subprocess.DEVNULL).returncode != 0]
    if 'nginx' not in missing and stream_module() is None:
        missing.append('libnginx-mod-stream')
    if not missing:
        return
    if 'nginx' in missing:
        missing.append('libnginx-mod-stream')
    if not allow:
        raise BenchError('missing: %s (run without --no-install, or apt-get install them)'
                         % ' '.join(missing))
    if os.geteuid() != 0:
        raise BenchError('missing %s and not root: apt-get install -y %s'
                         % (' '.join(missing), ' '.join(missing)))
    log('bench: installing %s' % ' '.join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    run(['apt-get', 'update', '-qq'], 600, env=env)
    run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends'] + missing, 900, env=env)
    if stream_module() is None:
        raise BenchError('nginx stream module still missing after installing libnginx-mod-stream')


def stream_module():
    """Path of ngx_stream_module.so, '' when nginx has stream built in,
    None when nginx cannot proxy TCP."""
    try:
        v = run(['nginx', '-V'], 10)
    except (BenchError, OSError):
        return None
    if '--with-stream ' in v + ' ' and '--with-stream=dynamic' not in v:
        return ''
    m = re.search(r'--modules-path=(\S+)', v)
    path = os.path.join(m.group(1) if m else '/usr/lib/nginx/modules', 'ngx_stream_module.so')
    return path if os.path.exists(path) else None


def versions(tcplb):
    def first(argv):
        try:
            return run(argv, 10, check=False).strip().splitlines()[0]
        except (BenchError, OSError, IndexError):
            return '?'
    rev = first(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'])
    dirty = run(['git', '-C', REPO, 'status', '--porcelain', '--untracked-files=no'],
                10, check=False).strip()
    cpu = '?'
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return {
        'tcplb': '%s (git %s%s)' % (first([tcplb, '-V']), rev, ', with uncommitted changes' if dirty else ''),
        'haproxy': first(['haproxy', '-v']),
        'nginx': first(['nginx', '-v']),
        'wrk': first(['wrk', '-v']),
        'curl': first(['curl', '-V']),
        'kernel': os.uname().release,
        'cpus': '%d x %s' % (os.cpu_count(), cpu),
    }


# ---------------------------------------------------------------- setup

NGINX_BACKEND_CONF = '''\
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_header_timeout 300s;
    client_body_temp_path {dir}/body;
    default_type application/octet-stream;
    server {{
        listen {host}:{port} backlog=4096;
        root {root};
        location / {{ }}
    }}
}}
'''

NGINX_STREAM_CONF = '''\
{load}worker_processes 2;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {conns}; }}
stream {{
    upstream backends {{
{servers}
    }}
    server {{
        listen {host}:{port} backlog=4096;
        proxy_pass backends;
        proxy_timeout 300s;
    }}
}}
'''

HAPROXY_CONF = '''\
global
    nbthread 2
    maxconn {maxconn}
{maxpipes}
defaults
    mode tcp
    maxconn {maxconn}
    timeout connect 5s
    timeout client 300s
    timeout server 300s
{splice}
frontend bench
    bind {host}:{port}
    default_backend backends

backend backends
    balance roundrobin
{servers}
'''

TCPLB_CONF = '''\
[global]
workers = 2
maxconn = {maxconn}
log = off
shutdown_timeout = 1s
stats_socket = {stats}
{extra}

[listener bench]
bind = {host}:{port}
pool = backends
mode = {mode}

[pool backends]
scheduler = roundrobin
health = none
idle_timeout = 5m
{servers}
'''


class Target:
    """One thing wrk points at: a balancer (with the PIDs to measure) or a
    backend reached directly (no PIDs)."""

    def __init__(self, name, port, argv=None, logpath=None, workers_of=False):
        self.name = name
        self.port = port
        self.argv = argv               # how to start it (again)
        self.proc = None
        self.logpath = logpath
        self.workers_of = workers_of   # measure the master's children
        self.dead = None               # why it stopped being measured
        self.stats = None              # tcplb's stats socket

    def pids(self):
        if self.proc is None:
            return []
        if self.workers_of:
            kids = proc_children(self.proc.pid)
            if not kids:
                raise BenchError('%s: no worker processes' % self.name)
            return kids
        return [self.proc.pid]

    def alive(self):
        return self.proc is None or self.proc.poll() is None


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.procs = Procs()
        self.backend_ports = []
        self.backend_masters = []
        self.targets = {}

    def backend_pids(self):
        """The three nginx backends, masters and workers: their CPU is part
        of what a request costs the machine."""
        pids = []
        for m in self.backend_masters:
            pids += [m] + proc_children(m)
        return pids

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, path, text):
        with open(path, 'w') as f:
            f.write(text)

    def start_backends(self):
        # nginx drops its workers to `nobody` when started as root: they
        # must be able to read the files.
        os.chmod(self.tmp, 0o755)
        big = self.path('big.bin')
        block = bytes(range(256)) * 4096           # 1 MiB, not all zeros
        with open(big, 'wb') as f:
            for _ in range(BIG_SIZE // len(block)):
                f.write(block)
        for i in range(1, 4):
            name = 'backend%d' % i
            d = self.path(name)
            root = os.path.join(d, 'www')
            os.makedirs(root)
            os.makedirs(os.path.join(d, 'body'))
            body = ('%s ' % name).ljust(SMALL_BODY_LEN - 1, '.') + '\n'
            self.write(os.path.join(root, 'index.html'), body)
            os.link(big, os.path.join(root, 'big.bin'))
            for p in (d, root):
                os.chmod(p, 0o755)
            port = free_port()
            conf = os.path.join(d, 'nginx.conf')
            self.write(conf, NGINX_BACKEND_CONF.format(
                nofile=NOFILE_WANT, dir=d, conns=NOFILE_WANT - 1000, host=HOST,
                port=port, root=root))
            logpath = os.path.join(d, 'stdout.log')
            p = self.procs.start(name, ['nginx', '-p', d, '-e', os.path.join(d, 'error.log'),
                                        '-c', conf, '-g', 'daemon off;'], logpath)
            wait_listening(name, p, port, logpath)
            self.backend_ports.append(port)
            self.backend_masters.append(p.pid)
        self.targets['direct'] = Target('direct', self.backend_ports[0])

    def launch(self, t):
        """Starts balancer t and waits until it listens (and, for nginx,
        until its two workers are up)."""
        t.proc = self.procs.start(t.name, t.argv, t.logpath)
        wait_listening(t.name, t.proc, t.port, t.logpath)
        if t.workers_of:
            deadline = time.monotonic() + 5
            while len(proc_children(t.proc.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        self.targets[t.name] = t

    def relaunch(self, t):
        """A fresh process for t, on the same port and config: memory freed
        by earlier connections stays in a process's heap and would be
        reused by the next ones, hiding what a connection costs."""
        self.procs.stop(t.proc)
        deadline = time.monotonic() + 10
        while listening(t.port):
            if time.monotonic() >= deadline:
                raise BenchError('%s: port %d still listening after stop' % (t.name, t.port))
            time.sleep(0.05)
        self.launch(t)

    def check_backends(self):
        """Stops the run if a backend died: no figure would mean anything."""
        for name, p, logpath in self.procs.procs:
            if name.startswith('backend') and p.poll() is not None:
                raise BenchError('%s exited with %s:\n%s' % (name, p.returncode, tail(logpath)))

    def start_tcplb(self, name='tcplb', mode='tcp', extra=''):
        d = self.path(name)
        os.makedirs(d)
        port = free_port()
        conf = os.path.join(d, 'tcplb.ini')
        servers = '\n'.join('server = backend%d %s:%d' % (i + 1, HOST, p)
                            for i, p in enumerate(self.backend_ports))
        stats = os.path.join(d, 'stats.sock')
        self.write(conf, TCPLB_CONF.format(maxconn=LB_MAXCONN, host=HOST, port=port,
                                           servers=servers, mode=mode, stats=stats,
                                           extra=extra))
        run([self.args.tcplb, '-c', '-f', conf], 10)
        logpath = os.path.join(d, 'stderr.log')
        t = Target(name, port, [self.args.tcplb, '-f', conf], logpath)
        t.stats = stats
        self.launch(t)

    def start_haproxy(self, name, splice):
        d = self.path(name)
        os.makedirs(d)
        port = free_port()
        conf = os.path.join(d, 'haproxy.cfg')
        servers = '\n'.join('    server backend%d %s:%d' % (i + 1, HOST, p)
                            for i, p in enumerate(self.backend_ports))
        self.write(conf, HAPROXY_CONF.format(
            maxconn=LB_MAXCONN, host=HOST, port=port, servers=servers,
            maxpipes='    maxpipes %d' % HAPROXY_MAXPIPES if splice else '',
            splice={None: '', 'auto': '    option splice-auto',
                    'always': '    option splice-request\n    option splice-response'}[splice]))
        run(['haproxy', '-c', '-f', conf], 10)
        logpath = os.path.join(d, 'stderr.log')
        self.launch(Target(name, port, ['haproxy', '-f', conf, '-db'], logpath))

    def start_nginx_stream(self):
        d = self.path('nginx-stream')
        os.makedirs(d)
        os.chmod(d, 0o755)
        port = free_port()
        conf = os.path.join(d, 'nginx.conf')
        mod = stream_module()
        if mod is None:
            raise BenchError('nginx has no stream module (apt-get install libnginx-mod-stream)')
        servers = '\n'.join('        server %s:%d;' % (HOST, p) for p in self.backend_ports)
        self.write(conf, NGINX_STREAM_CONF.format(
            load='load_module %s;\n' % mod if mod else '', nofile=NOFILE_WANT, dir=d,
            conns=NOFILE_WANT - 500, servers=servers, host=HOST, port=port))
        err = os.path.join(d, 'error.log')
        run(['nginx', '-t', '-p', d, '-e', err, '-c', conf], 10)
        logpath = os.path.join(d, 'stdout.log')
        self.launch(Target('nginx', port, ['nginx', '-p', d, '-e', err, '-c', conf,
                                           '-g', 'daemon off;'], logpath, workers_of=True))

    def start_all(self):
        self.start_backends()
        wanted = self.args.targets
        if 'tcplb' in wanted:
            self.start_tcplb()
        if 'tcplb-http' in wanted:
            self.start_tcplb('tcplb-http', 'http')
        if 'tcplb-epoll' in wanted:
            self.start_tcplb('tcplb-epoll', 'tcp', 'io = epoll')
        if 'tcplb-uring' in wanted:
            self.start_tcplb('tcplb-uring', 'tcp', 'io = io_uring')
        if 'tcplb-reuseport' in wanted:
            self.start_tcplb('tcplb-reuseport', 'tcp', 'accept_balance = off')
        if 'haproxy' in wanted:
            self.start_haproxy('haproxy', None)
        if 'haproxy-splice' in wanted:
            self.start_haproxy('haproxy-splice', 'auto')
        if 'haproxy-splice-always' in wanted:
            self.start_haproxy('haproxy-splice-always', 'always')
        if 'nginx' in wanted:
            self.start_nginx_stream()

    def check_targets(self):
        """One keep-alive-less GET per backend through each target: the body
        names the backend, so six answers show round robin over three."""
        for name in self.args.targets:
            t = self.targets[name]
            seen = set()
            for _ in range(6):
                status, body = http_get(t.port, '/')
                if status != 200 or len(body) != SMALL_BODY_LEN:
                    raise BenchError('%s: GET / answered %s with %d bytes' % (name, status, len(body)))
                seen.add(body.split()[0].decode())
            want = 1 if name == 'direct' else 3
            if len(seen) != want:
                log('bench: %s: 6 requests reached %s (expected %d backends)'
                    % (name, ', '.join(sorted(seen)), want))


def http_get(port, path, timeout=5.0):
    data = exchange(port, ('GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n'
                           % path).encode(), timeout)
    head, _, body = data.partition(b'\r\n\r\n')
    m = re.match(rb'HTTP/1\.\d (\d+)', head)
    return (int(m.group(1)) if m else 0), body


# ---------------------------------------------------------------- measurements

_UNITS = {'us': 1e-3, 'ms': 1.0, 's': 1e3, 'm': 60e3}


def _ms(text):
    m = re.match(r'([\d.]+)(us|ms|s|m)$', text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_wrk(out):
    """req/s, p50/p99 in ms, request count and error counts from wrk --latency."""
    r = {'rps': None, 'p50': None, 'p99': None, 'requests': 0, 'errors': 0, 'non2xx': 0}
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    if m:
        r['rps'] = float(m.group(1))
    m = re.search(r'(\d+) requests in', out)
    if m:
        r['requests'] = int(m.group(1))
    for pct, key in (('50', 'p50'), ('99', 'p99')):
        m = re.search(r'^\s+%s(?:\.0+)?%%\s+(\S+)' % pct, out, re.M)
        if m:
            r[key] = _ms(m.group(1))
    m = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    if m:
        r['errors'] = sum(int(x) for x in m.groups())
        r['error_detail'] = m.group(0)
    m = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if m:
        r['non2xx'] = int(m.group(1))
    return r


def wrk(port, duration, close, path='/'):
    argv = ['wrk', '-t%d' % WRK_THREADS, '-c%d' % WRK_CONNS, '-d%ds' % duration, '--latency']
    if close:
        argv += ['-H', 'Connection: close']
    argv.append('http://%s:%d%s' % (HOST, port, path))
    out = run(argv, duration + 30, check=False)
    r = parse_wrk(out)
    if r['rps'] is None:
        raise BenchError('wrk gave no result:\n' + out[-1500:])
    return r


def bulk(port, per_client):
    """BULK_CLIENTS concurrent curls, each downloading the 64 MiB file
    per_client times on one connection. Returns bytes, seconds, errors."""
    url = 'http://%s:%d/big.bin' % (HOST, port)
    argv = ['curl', '-s', '--max-time', '120',
            '-w', '%{http_code} %{size_download} %{time_total}\\n']
    for _ in range(per_client):
        argv += ['-o', '/dev/null', url]
    t0 = time.monotonic()
    ps = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
          for _ in range(BULK_CLIENTS)]
    outs = []
    try:
        for p in ps:
            outs.append(p.communicate(timeout=150)[0].decode())
    finally:
        for p in ps:
            if p.poll() is None:
                p.kill()
                p.wait()
    elapsed = time.monotonic() - t0
    total, errors = 0, 0
    for p, out in zip(ps, outs):
        lines = out.split('\n')[:-1]
        if p.returncode != 0:
            errors += 1
        errors += per_client - len(lines)
        for line in lines:
            code, size, _ = line.split()
            total += int(size)
            if code != '200' or int(size) != BIG_SIZE:
                errors += 1
    return {'bytes': total, 'seconds': elapsed, 'mbps': total / 1e6 / elapsed,
            'errors': errors}


def idle_open(port, n, timeout=30.0):
    """n connections to port, source addresses spread over IDLE_SOURCES.
    Returns (sockets that connected, failures)."""
    socks, pending, failed = [], {}, 0
    poller = select.poll()

    def drain(keep):
        nonlocal failed
        deadline = time.monotonic() + timeout
        while len(pending) > keep:
            left = deadline - time.monotonic()
            if left <= 0:
                for fd, s in list(pending.items()):
                    poller.unregister(fd)
                    s.close()
                    failed += 1
                pending.clear()
                return
            for fd, _ in poller.poll(left * 1000):
                s = pending.pop(fd)
                poller.unregister(fd)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    socks.append(s)
                else:
                    s.close()
                    failed += 1

    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((IDLE_SOURCES[i % len(IDLE_SOURCES)], 0))
            s.setblocking(False)
            rc = s.connect_ex((HOST, port))
        except OSError:
            s.close()
            failed += 1
            continue
        if rc == 0:
            socks.append(s)
        elif rc == errno.EINPROGRESS:
            pending[s.fileno()] = s
            poller.register(s, select.POLLOUT)
            if len(pending) >= IDLE_BATCH:
                drain(IDLE_BATCH // 4)
        else:
            s.close()
            failed += 1
    drain(0)
    return socks, failed


def wait_count(ports, pred, timeout):
    deadline = time.monotonic() + timeout
    while True:
        n = established_at(ports)
        if pred(n) or time.monotonic() >= deadline:
            return n
        time.sleep(0.1)


def idle_rss(b, target, n, backend_ports):
    """(RSS_n - RSS_0) / n for a fresh balancer process, with n idle
    proxied connections."""
    settle = wait_count(backend_ports, lambda c: c == 0, 30)
    b.relaunch(target)
    time.sleep(0.5)
    rss0 = rss_bytes(target.pids())
    socks, failed = idle_open(target.port, n)
    try:
        # Every connection is idle once the balancer has its server side:
        # count them at the backends.
        reached = wait_count(backend_ports, lambda c: c >= len(socks), 60)
        time.sleep(0.5)
        reached = established_at(backend_ports)
        rssn = rss_bytes(target.pids())
    finally:
        for s in socks:
            s.close()
    r = {'n': n, 'connected': len(socks), 'failed': failed, 'reached': reached,
         'rss0': rss0, 'rssn': rssn, 'leftover': settle}
    r['per_conn'] = (rssn - rss0) / reached if reached else None
    r['errors'] = failed + max(0, n - reached)
    return r


# ---------------------------------------------------------------- driver

MEASURES = ('keepalive', 'close', 'bulk', 'idle')


def measure_one(b, kind, name):
    t = b.targets[name]
    a = b.args
    if kind in ('keepalive', 'close'):
        pids = t.pids()
        bpids = b.backend_pids()
        c0 = cpu_us(pids) if pids else None
        b0 = cpu_us(bpids)
        sampler, r_workers = None, {}
        if t.stats and kind == 'keepalive':
            # halfway through: how the connections sit on the workers
            sampler = threading.Timer(a.duration / 2.0, sample_workers, (t, r_workers))
            sampler.start()
        r = wrk(t.port, a.duration, kind == 'close')
        backends = cpu_us(bpids) - b0
        if pids:
            lb = cpu_us(pids) - c0
            r['cpu_per_req'] = lb / r['requests'] if r['requests'] else None
            r['cpu_all_per_req'] = (lb + backends) / r['requests'] if r['requests'] else None
        else:
            r['cpu_all_per_req'] = backends / r['requests'] if r['requests'] else None
        if sampler is not None:
            sampler.join()
            r.update(r_workers)
        return r
    if kind == 'bulk':
        pids = t.pids()
        c0 = cpu_us(pids) if pids else None
        r = bulk(t.port, a.bulk)
        if pids:
            r['cpu_per_mb'] = (cpu_us(pids) - c0) / (r['bytes'] / 1e6) if r['bytes'] else None
        return r
    if kind == 'idle':
        if t.proc is None:
            return None
        r = {}
        for n in a.idle:
            r[n] = idle_rss(b, t, n, set(b.backend_ports))
        r['errors'] = sum(v['errors'] for v in r.values())
        # The next repetition meets this fresh process: warm it as the
        # first one was.
        wait_count(set(b.backend_ports), lambda c: c == 0, 30)
        if a.warmup > 0 and a.reps > 1:
            wrk(t.port, a.warmup, False)
        return r
    raise ValueError(kind)


def sample_workers(t, out):
    """tcplb's workers_active from show info: out['workers_active'] (a list)
    and out['worker_spread'] (max / mean)."""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(2)
        sock.connect(t.stats)
        sock.sendall(b'show info\n')
        sock.shutdown(socket.SHUT_WR)
        data = b''
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
    except OSError:
        return
    for line in data.decode('utf-8', 'replace').splitlines():
        if line.startswith('workers_active:'):
            active = [int(x) for x in line.split(':', 1)[1].split()]
            if active and sum(active):
                out['workers_active'] = active
                out['worker_spread'] = max(active) / (sum(active) / len(active))


def brief(kind, r):
    if r is None:
        return '-'
    if kind in ('keepalive', 'close'):
        s = '%.0f req/s p50 %.2f ms p99 %.2f ms' % (r['rps'], r['p50'] or 0, r['p99'] or 0)
        if r.get('cpu_per_req') is not None:
            s += ', LB CPU %.1f us/req' % r['cpu_per_req']
        if r.get('cpu_all_per_req') is not None:
            s += ', all CPU %.1f us/req' % r['cpu_all_per_req']
        if r.get('workers_active'):
            s += ', workers %s' % '/'.join(str(x) for x in r['workers_active'])
        if r['errors'] or r['non2xx']:
            s += ', %s, non-2xx %d' % (r.get('error_detail', ''), r['non2xx'])
        return s
    if kind == 'bulk':
        s = '%.0f MB/s' % r['mbps']
        if r.get('cpu_per_mb') is not None:
            s += ', LB CPU %.0f us/MB' % r['cpu_per_mb']
        if r['errors']:
            s += ', %d failed downloads' % r['errors']
        return s
    parts = []
    for n, v in r.items():
        if n == 'errors':
            continue
        parts.append('%d conns: %s B/conn (reached %d, failed %d)' % (
            n, '%.0f' % v['per_conn'] if v['per_conn'] is not None else '?', v['reached'], v['failed']))
    return '; '.join(parts)


def bench_run(b):
    a = b.args
    results = {k: {t: [] for t in a.targets} for k in MEASURES}
    problems = []
    if a.warmup > 0:
        for name in a.targets:
            wrk(b.targets[name].port, a.warmup, False)
    for rep in range(a.reps):
        # Each repetition starts one target further on (A B C, B C A, C A B):
        # a run leaves up to 131,072 TIME_WAIT sockets and warm or cold
        # caches behind, so no target should always follow the same one.
        shift = rep % len(a.targets)
        order = a.targets[shift:] + a.targets[:shift]
        for kind in MEASURES:
            for name in order:
                b.check_backends()
                t = b.targets[name]
                if t.dead:
                    results[kind][name].append(None)
                    continue
                t0 = time.monotonic()
                try:
                    r = measure_one(b, kind, name)
                except BenchError as e:
                    r = None
                    problems.append('rep %d %s %s: %s' % (rep + 1, kind, name, e))
                    log('bench: ' + problems[-1])
                if not t.alive():
                    t.dead = 'exited with %s during %s, rep %d' % (t.proc.returncode, kind, rep + 1)
                    problems.append('%s %s; last output:\n%s' % (name, t.dead, tail(t.logpath)))
                    log('bench: ' + problems[-1])
                elif r is not None and r.get('errors'):
                    problems.append('rep %d %s %s: %s' % (rep + 1, kind, name, brief(kind, r)))
                results[kind][name].append(r)
                if r is not None or kind != 'idle':
                    log('[%d/%d] %-9s %-14s %s (%.0f s)' % (rep + 1, a.reps, kind, name,
                                                           brief(kind, r), time.monotonic() - t0))
    return results, problems


# ---------------------------------------------------------------- report

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fig(results, kind, name, key):
    """Median of one figure over the repetitions."""
    vals = []
    for r in results[kind].get(name, []):
        if r is None:
            continue
        if kind == 'idle':
            v = r.get(key[0], {}).get(key[1])
        else:
            v = r.get(key)
        vals.append(v)
    return med(vals)


def fmt(v, digits=0):
    if v is None:
        return '–'
    if digits == 0:
        return '{:,.0f}'.format(v)
    return '{:,.{d}f}'.format(v, d=digits)


def ratio(v, ref):
    if v is None or not ref:
        return '–'
    return '%.2f' % (v / ref)


def table(results, targets, kind, cols):
    """cols: [(header, key, digits)]; every figure gets a 'x HAProxy' column."""
    head = ['target']
    for h, _, _ in cols:
        head += [h, '× HAProxy']
    head.append('errors')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for name in targets:
        row = [LABELS[name]]
        for _, key, digits in cols:
            v = fig(results, kind, name, key)
            row += [fmt(v, digits), ratio(v, fig(results, kind, REFERENCE, key))]
        errs = sum(r.get('errors', 0) + r.get('non2xx', 0)
                   for r in results[kind].get(name, []) if r)
        row.append(str(errs))
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def summary(results, targets, idle_max):
    head = ['target', 'keep-alive req/s', 'p99 ms', 'LB CPU µs/req', 'LB + backends µs/req',
            'conn-per-request req/s', 'p99 ms', 'LB CPU µs/req',
            '64 MiB downloads MB/s', 'LB CPU µs/MB', 'RSS per idle conn (%s)' % fmt(idle_max)]
    spec = [('keepalive', 'rps', 0), ('keepalive', 'p99', 2), ('keepalive', 'cpu_per_req', 1),
            ('keepalive', 'cpu_all_per_req', 1), ('close', 'rps', 0), ('close', 'p99', 2), ('close', 'cpu_per_req', 1),
            ('bulk', 'mbps', 0), ('bulk', 'cpu_per_mb', 0), ('idle', (idle_max, 'per_conn'), 0)]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for name in targets:
        row = [LABELS[name]]
        for kind, key, digits in spec:
            v = fig(results, kind, name, key)
            ref = fig(results, kind, REFERENCE, key)
            cell = fmt(v, digits)
            if kind == 'idle' and v is not None:
                cell += ' B'
            if v is not None and ref and name != REFERENCE:
                cell += ' (%s)' % ratio(v, ref)
            row.append(cell)
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def spread_lines(results, targets):
    """Per repetition, each tcplb target's figure over HAProxy's of the
    same repetition: min, median and max, so that a median comes with how
    far the repetitions were apart."""
    figs = [('keepalive', 'rps', 'keep-alive req/s'), ('keepalive', 'p99', 'keep-alive p99'),
            ('keepalive', 'cpu_all_per_req', 'keep-alive LB + backends CPU/req'),
            ('close', 'rps', 'conn-per-request req/s'), ('bulk', 'mbps', 'bulk MB/s')]
    out = []
    for name in [t for t in targets if t.startswith('tcplb')]:
        cells = []
        for kind, key, label in figs:
            reps = [m[key] / h[key] for m, h in zip(results[kind].get(name, []),
                                                    results[kind].get(REFERENCE, []))
                    if m and h and m.get(key) and h.get(key)]
            if reps:
                cells.append('%s %.2f (%.2f–%.2f)' % (label, statistics.median(reps),
                                                      min(reps), max(reps)))
        spreads = [r['worker_spread'] for r in results['keepalive'].get(name, [])
                   if r and r.get('worker_spread')]
        if spreads:
            cells.append('workers\' active connections max/mean %.2f (%.2f–%.2f)'
                         % (statistics.median(spreads), min(spreads), max(spreads)))
        if cells:
            out.append('- `%s` ÷ HAProxy per repetition, median (min–max): %s'
                       % (name, '; '.join(cells)))
    return '\n'.join(out)


def observer_cost(results):
    """What observing requests costs: tcplb in mode http over tcplb in
    mode tcp, median and per repetition, for LB CPU per keep-alive request."""
    out = ['What observing requests costs (`tcplb-http` / `tcplb`, LB CPU per request):']
    for kind, label in (('keepalive', 'keep-alive'), ('close', 'connection per request')):
        v, ref = fig(results, kind, 'tcplb-http', 'cpu_per_req'), fig(results, kind, 'tcplb',
                                                                     'cpu_per_req')
        reps = [ratio(h['cpu_per_req'], t['cpu_per_req'])
                for h, t in zip(results[kind].get('tcplb-http', []),
                                results[kind].get('tcplb', []))
                if h and t and h.get('cpu_per_req') and t.get('cpu_per_req')]
        out.append('%s %s (per repetition %s)' % (label, ratio(v, ref) if v and ref else '-',
                                                  ', '.join(reps) or '-'))
    return '; '.join(out[:1] + [', '.join(out[1:])])


def raw_lines(results, targets, a):
    out = []
    for name in targets:
        out.append('- **%s**' % name)
        for kind in MEASURES:
            reps = results[kind].get(name, [])
            if kind == 'idle' and name == 'direct':
                continue
            cells = []
            for r in reps:
                if r is None:
                    cells.append('–')
                elif kind in ('keepalive', 'close'):
                    cpu = r.get('cpu_per_req')
                    cells.append('%s req/s, p50 %s, p99 %s ms, %s req%s%s' % (
                        fmt(r['rps']), fmt(r['p50'], 2), fmt(r['p99'], 2), fmt(r['requests']),
                        ', %s µs/req' % fmt(cpu, 1) if cpu is not None else '',
                        ', errors %d, non-2xx %d' % (r['errors'], r['non2xx'])
                        if r['errors'] or r['non2xx'] else ''))
                elif kind == 'bulk':
                    cpu = r.get('cpu_per_mb')
                    cells.append('%s MB in %.2f s = %s MB/s%s%s' % (
                        fmt(r['bytes'] / 1e6), r['seconds'], fmt(r['mbps']),
                        ', %s µs/MB' % fmt(cpu) if cpu is not None else '',
                        ', %d failed' % r['errors'] if r['errors'] else ''))
                else:
                    parts = []
                    for n in a.idle:
                        v = r[n]
                        parts.append('%s: RSS %s → %s KiB, %s reached%s' % (
                            fmt(n), fmt(v['rss0'] / 1024), fmt(v['rssn'] / 1024),
                            fmt(v['reached']), ', %d failed' % v['failed'] if v['failed'] else ''))
                    cells.append('; '.join(parts))
            out.append('  - %s: %s' % (kind, ' / '.join(cells)))
    return '\n'.join(out)


def report(results, problems, a, ver, started, elapsed):
    targets = a.targets
    idle_max = max(a.idle)
    dur = '%ds' % a.duration
    md = []
    md.append('# tcplb benchmark — %s' % time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started)))
    md.append('')
    md.append('`%s`: %s, %d repetition%s interleaved, %.0f s in all.'
              % (' '.join(['tools/bench/bench.py'] + a.argv), 'quick' if a.quick else 'full',
                 a.reps, '' if a.reps == 1 else 's', elapsed))
    md.append('Machine: %s, Linux %s. %s; %s; %s; %s.' % (
        ver['cpus'], ver['kernel'], ver['tcplb'], ver['haproxy'], ver['nginx'], ver['wrk']))
    md.append('Load average (1 min) before the run %s, after %s: anything above ~0.5 '
              'before means something else was running.' % (a.load_before, loadavg()))
    md.append('')
    md.append('Medians over the repetitions; "(x)" and "× HAProxy" divide by HAProxy\'s figure '
              '(mode tcp, no splice) from this same run. Higher is better for req/s and MB/s, '
              'lower for latency, CPU and memory. Absolute numbers drift between runs on this '
              'shared machine; the ratios are what to compare.')
    md.append('')
    md.append('## Summary')
    md.append('')
    md.append(summary(results, targets, idle_max))
    md.append('')
    spread = spread_lines(results, targets)
    if spread:
        md.append(spread)
        md.append('')
    if 'tcplb' in targets and 'tcplb-http' in targets:
        md.append(observer_cost(results))
        md.append('')
    md.append('## Keep-alive: `wrk -t%d -c%d -d%s --latency`' % (WRK_THREADS, WRK_CONNS, dur))
    md.append('')
    md.append(table(results, targets, 'keepalive', [('req/s', 'rps', 0), ('p50 ms', 'p50', 2),
                                                    ('p99 ms', 'p99', 2),
                                                    ('LB CPU µs/req', 'cpu_per_req', 1),
                                                    ('LB + backends µs/req',
                                                     'cpu_all_per_req', 1)]))
    md.append('')
    md.append("## Connection per request: same, with `-H 'Connection: close'`")
    md.append('')
    md.append(table(results, targets, 'close', [('req/s', 'rps', 0), ('p50 ms', 'p50', 2),
                                                ('p99 ms', 'p99', 2),
                                                ('LB CPU µs/req', 'cpu_per_req', 1)]))
    md.append('')
    md.append('## Bulk: %d concurrent curl clients, each downloading the 64 MiB file %d times'
              % (BULK_CLIENTS, a.bulk))
    md.append('')
    md.append(table(results, targets, 'bulk', [('MB/s', 'mbps', 0),
                                               ('LB CPU µs/MB', 'cpu_per_mb', 0)]))
    md.append('')
    md.append('## Idle connections: balancer RSS per held connection, (RSS_N − RSS_0) / N')
    md.append('')
    cols = []
    for n in a.idle:
        cols.append(('bytes/conn at %s' % fmt(n), (n, 'per_conn'), 0))
    md.append(table(results, [t for t in targets if t != 'direct'], 'idle', cols))
    md.append('')
    md.append('## Raw numbers, per repetition')
    md.append('')
    md.append(raw_lines(results, targets, a))
    md.append('')
    md.append('## Problems seen')
    md.append('')
    md.append('\n'.join('- ' + p.replace('\n', '\n    ') for p in problems) if problems else 'None.')
    md.append('')
    return '\n'.join(md)


# ---------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description='tcplb vs HAProxy vs nginx stream on loopback.')
    p.add_argument('--quick', action='store_true', help='1 repetition, short runs (< 2 min)')
    p.add_argument('--reps', type=int, help='repetitions (default 3, quick 1)')
    p.add_argument('--duration', type=int, help='seconds per wrk run (default 8, quick 3)')
    p.add_argument('--bulk', type=int, help='64 MiB downloads per curl client (default 16, quick 6)')
    p.add_argument('--idle', help='idle connection counts, comma-separated (default 1000,9000)')
    p.add_argument('--targets', default=','.join(DEFAULT_TARGETS),
                   help='comma-separated, from %s (default: all but haproxy-splice-always; '
                   'haproxy is always run)' % ','.join(TARGETS))
    p.add_argument('--build', default=os.path.join(REPO, 'build'), help='build directory')
    p.add_argument('--out', help='Markdown output (default BUILD/bench/results.md)')
    p.add_argument('--no-install', action='store_true', help='fail instead of apt-get install')
    p.add_argument('--keep', action='store_true', help='keep the temporary directory')
    a = p.parse_args(argv)
    a.argv = argv
    prof = PROFILES['quick' if a.quick else 'full']
    a.reps = a.reps or prof['reps']
    a.duration = a.duration or prof['duration']
    a.warmup = prof['warmup']
    a.bulk = a.bulk or prof['bulk']
    a.idle = tuple(int(x) for x in a.idle.split(',')) if a.idle else prof['idle']
    names = [t.strip() for t in a.targets.split(',') if t.strip()]
    for t in names:
        if t not in TARGETS:
            p.error('unknown target %s' % t)
    if REFERENCE not in names:
        names.append(REFERENCE)
    a.targets = [t for t in TARGETS if t in names]
    a.tcplb = os.path.join(a.build, 'tcplb')
    a.out = a.out or os.path.join(a.build, 'bench', 'results.md')
    if max(a.idle) > LB_MAXCONN:
        p.error('--idle above %d does not fit the 20,000 open files per process' % LB_MAXCONN)
    return a


def loadavg():
    try:
        with open('/proc/loadavg') as f:
            return f.read().split()[0]
    except OSError:
        return '?'


def raise_nofile():
    """Soft = hard open-file limit, for the idle-connection client here and,
    by inheritance, for every balancer and backend started below."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else NOFILE_WANT
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def main(argv):
    a = parse_args(argv)
    os.environ['PATH'] = os.environ.get('PATH', '') + ':/usr/sbin:/sbin'
    if 'tcplb' in a.targets and not os.access(a.tcplb, os.X_OK):
        log('bench: %s not found: run make first' % a.tcplb)
        return 2
    nofile = raise_nofile()
    if nofile < 2 * max(a.idle) + 100:
        log('bench: open-file limit %d is too low for %d idle connections' % (nofile, max(a.idle)))
        return 2

    def on_term(signum, frame):
        raise Interrupted()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    # Even when started in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    tmp = None
    b = None
    started = time.time()
    a.load_before = loadavg()
    t0 = time.monotonic()
    try:
        install(not a.no_install)
        ver = versions(a.tcplb)
        tmp = tempfile.mkdtemp(prefix='tcplb-bench-')
        b = Bench(a, tmp)
        log('bench: starting backends and targets in %s' % tmp)
        b.start_all()
        b.check_targets()
        results, problems = bench_run(b)
    except BenchError as e:
        log('bench: %s' % e)
        return 1
    except (KeyboardInterrupt, Interrupted):
        log('bench: interrupted')
        return 130
    finally:
        if b is not None:
            b.procs.stop_all()
        if tmp and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp:
            log('bench: kept %s' % tmp)
    md = report(results, problems, a, ver, started, time.monotonic() - t0)
    print(md)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, 'w') as f:
        f.write(md)
    with open(os.path.splitext(a.out)[0] + '.json', 'w') as f:
        json.dump({'args': a.argv, 'versions': ver, 'started': started,
                   'results': {k: {t: [(_jsonable(r)) for r in v] for t, v in d.items()}
                               for k, d in results.items()},
                   'problems': problems}, f, indent=1)
    log('bench: wrote %s' % a.out)
    return 0


def _jsonable(r):
    if isinstance(r, dict):
        return {str(k): _jsonable(v) for k, v in r.items()}
    return r


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
