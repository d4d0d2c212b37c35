"""harness.py -- what the integration tests share: free loopback ports, a
config builder, a Tcplb process wrapper with a stats-socket client, backends
written in Python (threads, so the suite needs no other program), blocking
client helpers and a TestCase base class that cleans everything up.

Every wait is bounded in time and every client socket has a timeout, so a
broken tcplb fails a test instead of hanging the suite."""

import collections
import errno
import hashlib
import json
import os
import re
import selectors
import shlex
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = '127.0.0.1'
CLIENT_TIMEOUT = 10.0       # seconds, on every client socket
START_TIMEOUT = 5.0         # tcplb must listen within this
STOP_TIMEOUT = 10.0         # SIGTERM -> exit within this, else SIGKILL
WRAPPED_START_TIMEOUT = 30.0  # start under $TCPLB_WRAPPER (valgrind is slow)

STAT_CSV_HEADER = ('# pool,server,addr,state,weight,active,total,failed,'
                   'bytes_in,bytes_out,requests,rt_p50_ms,rt_p99_ms,http_5xx,eweight,backup')


def tcplb_bin():
    """The binary under test: $TCPLB_BIN, else build/tcplb in the repo."""
    return os.environ.get('TCPLB_BIN') or os.path.join(REPO, 'build', 'tcplb')


def require_bin():
    path = tcplb_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError('tcplb binary not found or not executable: %s '
                             '(build it, or pass run.py --build DIR)' % path)
    return path


# ---------------------------------------------------------------- ports

# the free-port finder is shared with tools/bench and tools/lab
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', 'tools'))
from loopback import free_port  # noqa: E402


def dead_port():
    """A port where connects are refused: bound once, then closed."""
    return free_port()


def _listening_ports():
    """Local ports in LISTEN state, from /proc/net/tcp{,6}; None if unreadable."""
    ports = set()
    found = False
    for path in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(path) as f:
                found = True
                next(f, None)                      # header
                # The kernel lists listening sockets first: stop at the first
                # other one instead of reading tens of thousands of
                # TIME_WAIT lines on a busy machine.
                for line in f:
                    fields = line.split()
                    if len(fields) <= 3 or fields[3] != '0A':
                        break
                    ports.add(int(fields[1].rsplit(':', 1)[1], 16))
        except OSError:
            continue
    return ports if found else None


def is_listening(port):
    """True once something listens on port. Reads the kernel's socket table
    instead of connecting, so waiting for readiness adds no connection to
    tcplb's counters or to a backend's."""
    ports = _listening_ports()
    if ports is not None:
        return port in ports
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_until(pred, timeout=3.0, interval=0.05):
    """Calls pred until it returns a true value or timeout passes; returns
    the last value. Exceptions from pred count as false until the deadline,
    then propagate."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = pred()
        except Exception:
            if time.monotonic() >= deadline:
                raise
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------- config

def _render(section, items):
    lines = ['[%s]' % section]
    for key, value in items:
        if value is not None:
            lines.append('%s = %s' % (key, value))
    return '\n'.join(lines) + '\n'


# $TCPLB_TEST_IO: every tcplb a test starts gets `io = ` that value unless
# its config names one (make test runs the relay tests again with io_uring).
TEST_IO = os.environ.get('TCPLB_TEST_IO', '')


def with_test_io(text):
    if not TEST_IO or re.search(r'^\s*io\s*=', text, re.M):
        return text
    line = 'io = %s' % TEST_IO
    if re.search(r'^\[global\][ \t]*$', text, re.M):
        return re.sub(r'^\[global\][ \t]*$', '[global]\n' + line, text, count=1, flags=re.M)
    return '[global]\n%s\n\n%s' % (line, text)


class Config:
    """Builds a tcplb INI file (docs/reference.md: Configuration) whose stats socket and
    access log live in the test's temp dir.

    Keyword arguments become keys; a value of None leaves the key out."""

    def __init__(self, tmpdir, workers=2, shutdown_timeout='2s', **global_keys):
        self.dir = tmpdir
        self.stats_socket = os.path.join(tmpdir, 'stats.sock')
        self.log_path = os.path.join(tmpdir, 'access.log')
        self.global_items = [('workers', workers),
                             ('stats_socket', self.stats_socket),
                             ('log', self.log_path),
                             ('shutdown_timeout', shutdown_timeout)]
        self.global_items += list(global_keys.items())
        self.sections = []
        self.listen_ports = []

    def listener(self, name, pool, mode='tcp', port=None, **keys):
        """Adds [listener NAME] bound to 127.0.0.1:port (a free one by
        default); returns the port."""
        if port is None:
            port = free_port()
        items = [('bind', '%s:%d' % (HOST, port)), ('pool', pool),
                 ('mode', mode)] + list(keys.items())
        self.sections.append(_render('listener %s' % name, items))
        self.listen_ports.append(port)
        return port

    def pool(self, name, servers=(), scheduler='roundrobin',
             connect_timeout='1s', retries=2, health='none', **keys):
        """Adds [pool NAME]. servers: (name, addr) or (name, addr, options)
        tuples, where addr is 'host:port' or a Backend and options is the
        rest of the line, e.g. 'weight=2 maxconn=10'."""
        items = [('scheduler', scheduler)]
        for srv in servers:
            sname, addr = srv[0], srv[1]
            if isinstance(addr, Backend):
                addr = addr.addr
            line = '%s %s' % (sname, addr)
            if len(srv) > 2 and srv[2]:
                line += ' ' + srv[2]
            items.append(('server', line))
        items += [('connect_timeout', connect_timeout), ('retries', retries),
                  ('health', health)] + list(keys.items())
        self.sections.append(_render('pool %s' % name, items))

    def text(self):
        return '\n'.join([_render('global', self.global_items)] + self.sections)


# ---------------------------------------------------------------- tcplb

class Tcplb:
    """One tcplb process in the foreground, its output in a file.

    config is a Config, or INI text together with listen_ports (waited for
    at start) and stats_socket."""

    def __init__(self, tmpdir, config, listen_ports=None, stats_socket=None,
                 name='tcplb'):
        self.dir = tmpdir
        if isinstance(config, Config):
            text = config.text()
            listen_ports = config.listen_ports
            stats_socket = config.stats_socket
            self.log_path = config.log_path
        else:
            text = config
            self.log_path = None
        self.listen_ports = list(listen_ports or [])
        self.stats_socket = stats_socket
        self.cfg_path = os.path.join(tmpdir, name + '.ini')
        self.out_path = os.path.join(tmpdir, name + '.out')
        self.write_config(text)
        self.proc = None
        self.returncode = None
        self.signaled = False       # the test itself sent a signal
        self.start_failed = False   # start() already reported the problem
        self._out = None
        # Command put in front of tcplb: $TCPLB_WRAPPER (e.g. "valgrind
        # --leak-check=full --error-exitcode=99"), which must exec tcplb in
        # the same process; a test may prepend its own (prlimit ... --).
        self.wrapper = shlex.split(os.environ.get('TCPLB_WRAPPER', ''))
        # the environment tcplb starts with (None: this process's)
        self.env = None

    def write_config(self, text):
        """Replaces tcplb's file at once (a reload never reads half of it),
        with $TCPLB_TEST_IO's `io =` as at start."""
        tmp = self.cfg_path + '.next'
        with open(tmp, 'w') as f:
            f.write(with_test_io(text))
        os.replace(tmp, self.cfg_path)

    # -- process

    def start(self, timeout=START_TIMEOUT):
        """Starts tcplb -f CFG and waits until every listener port listens.
        Raises AssertionError with the output tail if it exits or is late."""
        binary = require_bin()
        if os.environ.get('TCPLB_WRAPPER'):
            timeout = max(timeout, WRAPPED_START_TIMEOUT)
        self._out = open(self.out_path, 'wb')
        self.proc = subprocess.Popen(self.wrapper + [binary, '-f', self.cfg_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     close_fds=True, env=self.env)
        deadline = time.monotonic() + timeout
        waiting = list(self.listen_ports)
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.start_failed = True
                raise AssertionError('tcplb exited with %s during start\n%s'
                                     % (rc, self.log_tail()))
            waiting = [p for p in waiting if not is_listening(p)]
            if not waiting:
                break
            if time.monotonic() >= deadline:
                self.start_failed = True
                raise AssertionError('tcplb not listening on %s after %.0fs\n%s'
                                     % (waiting, timeout, self.log_tail()))
            time.sleep(0.02)
        # The stats socket may appear a moment after the listeners; stats()
        # also retries, so this wait is a courtesy, not a requirement.
        if self.stats_socket:
            wait_until(lambda: os.path.exists(self.stats_socket),
                       max(0.0, deadline - time.monotonic()), 0.02)
        if self.wrapper and os.environ.get('TCPLB_WRAPPER'):
            # slow under valgrind: listening long before signals are handled
            wait_started(self, max(1.0, deadline - time.monotonic()))
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.signaled = True
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Exit code, or None if still running after timeout seconds."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait up to timeout, SIGKILL as a last resort; returns the
        exit code (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signaled = True
            os.kill(self.proc.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.wait(5)
        self.returncode = self.proc.returncode
        if self._out:
            self._out.close()
            self._out = None
        return self.returncode

    def log_tail(self, lines=40):
        """The end of tcplb's stdout/stderr and of its access log."""
        parts = []
        for label, path in (('output', self.out_path), ('access log', self.log_path)):
            if not path:
                continue
            try:
                with open(path, 'rb') as f:
                    f.seek(0, os.SEEK_END)
                    size = f.tell()
                    f.seek(max(0, size - 16384))
                    data = f.read().decode('utf-8', 'replace')
            except OSError:
                continue
            tail = data.splitlines()[-lines:]
            parts.append('--- tcplb %s (%s, last %d lines) ---\n%s'
                         % (label, path, len(tail), '\n'.join(tail)))
        return '\n'.join(parts) if parts else '--- tcplb: no output ---'

    # -- stats socket

    def stats_raw(self, data, timeout=5.0):
        """Sends data as is to the stats socket, shuts down the write side and
        returns everything read until EOF, decoded."""
        if not self.stats_socket:
            raise AssertionError('no stats_socket in this config')
        deadline = time.monotonic() + 2.0
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(self.stats_socket)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        try:
            s.sendall(data.encode())
            s.shutdown(socket.SHUT_WR)
            return recv_until_eof(s, limit=16 << 20).decode('utf-8', 'replace')
        finally:
            s.close()

    def stats(self, cmd, timeout=5.0):
        """Answer to one stats command (a line end is added)."""
        return self.stats_raw(cmd + '\n', timeout)

    def stats_json(self):
        text = self.stats('show stat json')
        try:
            return json.loads(text)
        except ValueError as e:
            raise AssertionError('show stat json is not JSON (%s): %r'
                                 % (e, text[:2000]))


def show_info(lb):
    """show info as {key: value}, whole numbers as int, in the answer's
    order (dicts keep it)."""
    info = {}
    for line in lb.stats('show info').splitlines():
        key, sep, value = line.partition(':')
        if sep:
            value = value.strip()
            info[key.strip()] = int(value) if value.isdigit() else value
    return info


RELOAD_LINE = re.compile(r'tcplb: (reloaded |reload refused)')


def reload_lines(lb):
    """tcplb's answers to SIGHUP so far, oldest first."""
    return [ln for ln in tcplb_output(lb).splitlines() if RELOAD_LINE.search(ln)]


def json_servers(js, pool='p'):
    """{server name: its show stat json object} of one pool."""
    for p in js['pools']:
        if p['name'] == pool:
            return {srv['name']: srv for srv in p['servers']}
    raise AssertionError('no pool %s in %s' % (pool, json.dumps(js)[:2000]))


def foreign_ipv4():
    """An IPv4 address this machine does not hold (bind fails with
    EADDRNOTAVAIL), from the documentation ranges; None when every one
    binds (ip_nonlocal_bind, or the machine holds them all)."""
    for ip in ('192.0.2.1', '198.51.100.1', '203.0.113.1', '192.0.2.77'):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((ip, 0))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                return ip
        finally:
            s.close()
    return None


def check_config(path):
    """(exit code, stderr) of tcplb -c -f path."""
    p = subprocess.run([require_bin(), '-c', '-f', path],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=10)
    return p.returncode, p.stderr


def stop_process(proc, timeout=5):
    """Stops a process a test started (by its Popen): SIGTERM, then SIGKILL
    if it has not exited within timeout seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def find_server(js, pool, server):
    for p in js.get('pools', []):
        if p.get('name') == pool:
            for s in p.get('servers', []):
                if s.get('name') == server:
                    return s
    raise AssertionError('no server %s/%s in show stat json: %s'
                         % (pool, server, json.dumps(js)[:2000]))


def find_listener(js, name):
    for lst in js.get('listeners', []):
        if lst.get('name') == name:
            return lst
    raise AssertionError('no listener %s in show stat json: %s'
                         % (name, json.dumps(js)[:2000]))


def all_idle(js):
    """True when no listener and no server has an active connection."""
    if any(lst.get('active') for lst in js.get('listeners', [])):
        return False
    return not any(s.get('active') for p in js.get('pools', [])
                   for s in p.get('servers', []))


# ---------------------------------------------------------------- backends

class Backend:
    """A TCP server on a free 127.0.0.1 port (or on `port`, to come back
    where a stopped one was): one accept thread, one thread per connection
    running serve(). Stoppable; counts connections."""

    CONN_TIMEOUT = 20.0     # a connection thread gives up after this idle

    def __init__(self, name='backend', port=0):
        self.name = name
        self.lock = threading.Lock()
        self.connections = 0
        self.errors = []
        self._stop = threading.Event()
        self._conns = set()
        self._threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, port))
        self.lsock.listen(1024)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.addr = '%s:%d' % (HOST, self.port)
        self._accepter = threading.Thread(target=self._accept_loop,
                                          name='%s-accept' % name, daemon=True)
        self._accepter.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.settimeout(self.CONN_TIMEOUT)
            with self.lock:
                self.connections += 1
                self._conns.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]
                t = threading.Thread(target=self._serve_one, args=(conn,),
                                     name='%s-conn' % self.name, daemon=True)
                self._threads.append(t)
            t.start()

    def _serve_one(self, conn):
        try:
            self.serve(conn)
        except (OSError, ValueError) as e:
            if not self._stop.is_set():
                with self.lock:
                    self.errors.append(repr(e))
        finally:
            with self.lock:
                self._conns.discard(conn)
            conn.close()

    def serve(self, conn):
        raise NotImplementedError

    def stop(self):
        self._stop.set()
        self._accepter.join(2)
        self.lsock.close()
        with self.lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


class HttpBackend(Backend):
    """Answers every request, keep-alive or close, with 200, header
    `X-Backend: NAME` and body `NAME\\n`. `requests` counts answers.
    With delay (seconds), holds each request that long before answering
    (a slow server); `arrivals` lists the monotonic time each request head
    was complete."""

    def __init__(self, name, delay=0.0, port=0):
        self.requests = 0
        self.delay = delay
        self.arrivals = []
        super().__init__(name, port)

    def serve(self, conn):
        buf = b''
        while not self._stop.is_set():
            while b'\r\n\r\n' not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                if len(buf) > (1 << 20):
                    return
            head, _, buf = buf.partition(b'\r\n\r\n')
            lines = head.decode('latin-1').split('\r\n')
            version = lines[0].rsplit(' ', 1)[-1]
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(':')
                headers[k.strip().lower()] = v.strip()
            need = int(headers.get('content-length', '0') or 0)
            while len(buf) < need:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            buf = buf[need:]
            with self.lock:
                self.arrivals.append(time.monotonic())
            if self.delay > 0 and self._stop.wait(self.delay):
                return
            conn_hdr = headers.get('connection', '').lower()
            close = conn_hdr == 'close' or (version == 'HTTP/1.0' and
                                            conn_hdr != 'keep-alive')
            body = (self.name + '\n').encode()
            resp = ('HTTP/1.1 200 OK\r\nX-Backend: %s\r\n'
                    'Content-Type: text/plain\r\nContent-Length: %d\r\n'
                    'Connection: %s\r\n\r\n'
                    % (self.name, len(body), 'close' if close else 'keep-alive')
                    ).encode() + body
            with self.lock:
                self.requests += 1      # before sending: a client that has
            conn.sendall(resp)          # the answer sees it counted
            if close:
                conn.shutdown(socket.SHUT_WR)
                return


class EchoBackend(Backend):
    """Echoes every byte; on the client's FIN finishes sending, then shuts
    down its write side. `bytes` counts bytes echoed; `received` lists
    (length, sha256 hex) of what each finished connection sent."""

    def __init__(self, name='echo'):
        self.bytes = 0
        self.received = []
        super().__init__(name)

    def serve(self, conn):
        h = hashlib.sha256()
        n = 0
        while True:
            data = conn.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
            conn.sendall(data)
            with self.lock:
                self.bytes += len(data)
        conn.shutdown(socket.SHUT_WR)
        with self.lock:
            self.received.append((n, h.hexdigest()))


class SinkThenSendBackend(Backend):
    """Reads until the client's FIN, then sends sha256(received) (32 bytes)
    followed by `payload`, then closes: proves a half-close is passed on
    while the other direction keeps flowing."""

    PAYLOAD = hashlib.sha256(b'tcplb').digest() * (32768)   # 1 MiB

    def __init__(self, name='sink', payload=None):
        self.payload = self.PAYLOAD if payload is None else payload
        self.received = []
        super().__init__(name)

    def expected_reply(self, sent):
        return hashlib.sha256(sent).digest() + self.payload

    def serve(self, conn):
        h = hashlib.sha256()
        n = 0
        while True:
            data = conn.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        with self.lock:
            self.received.append((n, h.hexdigest()))
        conn.sendall(h.digest() + self.payload)
        conn.shutdown(socket.SHUT_WR)


class SilentBackend(Backend):
    """Accepts and reads, never writes a byte, holds the connection until the
    peer closes or the backend stops."""

    def serve(self, conn):
        while not self._stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except socket.timeout:
                continue


class CloseBeforeReplyBackend(Backend):
    """Reads the request head, then closes without sending a byte."""

    def serve(self, conn):
        buf = b''
        while b'\r\n\r\n' not in buf and len(buf) < 65536:
            data = conn.recv(65536)
            if not data:
                break
            buf += data


# ---------------------------------------------------------------- clients

def connect(port, timeout=CLIENT_TIMEOUT, source=None):
    """A client connection to 127.0.0.1:port; with source (an IP such as
    '127.0.0.5'), bound to that address first, so tcplb sees that client IP
    (all of 127.0.0.0/8 is local on Linux)."""
    return socket.create_connection((HOST, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)


def client_ip(i):
    """The i-th test client address: 127.0.0.2, 127.0.0.3, ... 127.0.0.254."""
    if not 0 <= i <= 252:
        raise ValueError('client_ip(%d): only 253 addresses' % i)
    return '127.0.0.%d' % (i + 2)


def recv_until_eof(sock, limit=256 << 20):
    """Everything until EOF (raises socket.timeout / ConnectionResetError)."""
    chunks = []
    n = 0
    while True:
        data = sock.recv(1 << 16)
        if not data:
            return b''.join(chunks)
        chunks.append(data)
        n += len(data)
        if n > limit:
            raise AssertionError('more than %d bytes before EOF' % limit)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(min(1 << 16, n - len(buf)))
        if not data:
            raise AssertionError('EOF after %d of %d bytes' % (len(buf), n))
        buf += data
    return bytes(buf)


class HttpResponse:
    def __init__(self, status_line, headers, body, eof):
        self.status_line = status_line
        parts = status_line.split(' ', 2)
        self.version = parts[0]
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        self.headers = headers      # lower-case names
        self.body = body
        self.eof = eof              # the peer closed right after the body

    def __repr__(self):
        return 'HttpResponse(%r, %r, %r)' % (self.status_line, self.headers,
                                            self.body[:200])


def read_http_response(sock, expect_eof=False):
    """Reads one complete response: status line, headers, a body of exactly
    Content-Length bytes (or until EOF without one). With expect_eof, also
    reads on and records whether EOF follows at once."""
    buf = b''
    while b'\r\n\r\n' not in buf:
        data = sock.recv(65536)
        if not data:
            raise AssertionError('EOF inside the response head: %r' % buf[:500])
        buf += data
        if len(buf) > (1 << 20):
            raise AssertionError('response head over 1 MiB')
    head, _, body = buf.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    eof = False
    if 'content-length' in headers:
        need = int(headers['content-length'])
        while len(body) < need:
            data = sock.recv(65536)
            if not data:
                raise AssertionError('EOF after %d of %d body bytes'
                                     % (len(body), need))
            body += data
        extra = body[need:]
        body = body[:need]
        if extra:
            raise AssertionError('%d bytes after the body: %r'
                                 % (len(extra), extra[:200]))
        if expect_eof:
            eof = sock.recv(65536) == b''
    else:
        body += recv_until_eof(sock)
        eof = True
    return HttpResponse(lines[0], headers, body, eof)


def http_request(port, path='/', close=True, timeout=CLIENT_TIMEOUT, sock=None,
                 source=None):
    """Sends GET path and returns the HttpResponse. A new connection (from
    client address source, if given) unless sock is given; with close, sends
    `Connection: close`, reads on to EOF and closes."""
    own = sock is None
    if own:
        sock = connect(port, timeout, source)
    try:
        req = ('GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: tcplb-it\r\n'
               'Connection: %s\r\n\r\n'
               % (path, HOST, port, 'close' if close else 'keep-alive'))
        sock.sendall(req.encode())
        return read_http_response(sock, expect_eof=close)
    finally:
        if own:
            sock.close()


def echo_concurrently(port, payloads, timeout=30.0):
    """Opens one connection per payload, sends them all at once (selectors,
    one thread), half-closes each after its payload and reads each to EOF.
    Returns the list of received byte strings, in payload order."""
    socks = []
    try:
        for _ in payloads:
            socks.append(connect(port))
        sel = selectors.DefaultSelector()
        state = []
        for i, (s, p) in enumerate(zip(socks, payloads)):
            s.setblocking(False)
            st = {'i': i, 'sock': s, 'out': memoryview(p), 'in': bytearray(),
                  'wdone': False, 'rdone': False}
            state.append(st)
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
        open_count = len(state)
        deadline = time.monotonic() + timeout
        while open_count:
            if time.monotonic() > deadline:
                stuck = [st['i'] for st in state if not st['rdone']]
                raise AssertionError('%d connections unfinished after %.0fs: %s'
                                     % (len(stuck), timeout, stuck[:20]))
            for key, events in sel.select(0.5):
                st = key.data
                s = st['sock']
                if events & selectors.EVENT_WRITE and not st['wdone']:
                    try:
                        n = s.send(st['out'][:65536])
                        st['out'] = st['out'][n:]
                    except BlockingIOError:
                        pass
                    if not len(st['out']):
                        s.shutdown(socket.SHUT_WR)
                        st['wdone'] = True
                        sel.modify(s, selectors.EVENT_READ, st)
                if events & selectors.EVENT_READ:
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        continue
                    if data:
                        st['in'] += data
                    else:
                        st['rdone'] = True
                        sel.unregister(s)
                        open_count -= 1
                        if not st['wdone']:
                            raise AssertionError('connection %d: EOF before '
                                                 'its payload was sent' % st['i'])
        sel.close()
        return [bytes(st['in']) for st in state]
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------- base class

def answer_lines(text):
    """The non-blank lines of a stats answer."""
    return [ln for ln in text.splitlines() if ln.strip()]


def csv_rows(lb):
    """{(pool, server): row dict} of show stat."""
    lines = answer_lines(lb.stats('show stat'))
    head = lines[0].lstrip('# ').split(',')
    rows = {}
    for ln in lines[1:]:
        row = dict(zip(head, ln.split(',')))
        rows[(row['pool'], row['server'])] = row
    return rows


class TcplbTestCase(unittest.TestCase):
    """Gives each test a temp dir and cleans up what it started: client
    sockets, then tcplb processes (which must exit 0 on SIGTERM: a crash or a
    sanitizer report fails the test), then backends, then the temp dir."""

    check_exit = True
    event_wait = 3.0        # how long wait_event() waits unless told

    # -- show events

    def events(self, lb):
        return answer_lines(lb.stats('show events 256'))

    def wait_event(self, lb, pattern, timeout=None):
        """The first `show events` line matching the regex, waited for."""
        rx = re.compile(pattern)
        timeout = self.event_wait if timeout is None else timeout
        line = wait_until(
            lambda: next((ln for ln in self.events(lb) if rx.search(ln)), None),
            timeout, 0.02)
        if not line:
            self.fail('no show events line matching %r within %.1fs:\n%s'
                      % (pattern, timeout, '\n'.join(self.events(lb))))
        return line

    def setUp(self):
        self._tmpobj = tempfile.TemporaryDirectory(prefix='tcplb-it-', dir='/tmp')
        self.tmp = self._tmpobj.name
        self._socks = []
        self._lbs = []
        self._backends = []
        self._diag = None
        self.addCleanup(self._cleanup)

    # -- things a test starts

    def backend(self, cls, *args, **kwargs):
        b = cls(*args, **kwargs)
        self._backends.append(b)
        return b

    def config(self, **global_keys):
        return Config(self.tmp, **global_keys)

    def tcplb(self, config, start=True, **kwargs):
        lb = Tcplb(self.tmp, config, name='tcplb%d' % len(self._lbs), **kwargs)
        self._lbs.append(lb)
        if start:
            lb.start()
        return lb

    def connect(self, port, timeout=CLIENT_TIMEOUT, source=None):
        s = connect(port, timeout, source)
        self._socks.append(s)
        return s

    def reload(self, lb, config, expect='reloaded', timeout=10.0):
        """Writes config (a Config or INI text) as lb's file, sends SIGHUP
        (os.kill: the cleanup still wants exit 0) and waits for the answer
        line; asserts it says `expect` ('reloaded' or 'reload refused') and
        returns it."""
        text = config.text() if isinstance(config, Config) else config
        wait_started(lb)            # SIGHUP is handled from then on
        before = len(reload_lines(lb))
        lb.write_config(text)
        os.kill(lb.pid, signal.SIGHUP)
        lines = wait_until(lambda: len(reload_lines(lb)) > before and reload_lines(lb),
                           timeout, 0.005)
        self.assertTrue(lines, 'no reload line within %.0fs after SIGHUP\n%s'
                        % (timeout, tcplb_output(lb)[-3000:]))
        line = lines[before]
        self.assertIn(expect, line, 'reload answered: %s' % line)
        return line

    # -- counters

    def settled_stats(self, lb, pred=None, timeout=3.0):
        """show stat json once no connection is active and pred(js) holds, or
        the last answer after timeout (the caller's asserts then explain)."""
        last = [None]

        def probe():
            js = lb.stats_json()
            last[0] = js
            return all_idle(js) and (pred is None or pred(js))
        wait_until(probe, timeout, 0.05)
        return last[0] if last[0] is not None else lb.stats_json()

    # -- diagnostics and cleanup

    def tcplb_diagnostics(self):
        """Output tails of this test's tcplb processes (used by run.py when
        a test fails)."""
        if self._diag is not None:
            return self._diag
        return '\n'.join(lb.log_tail() for lb in getattr(self, '_lbs', [])
                         if lb.proc is not None)

    def _cleanup(self):
        problems = []
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        for lb in self._lbs:
            if lb.proc is None:
                continue
            # A test that signalled tcplb itself asserts on the exit code.
            checked_by_test = lb.signaled or lb.start_failed
            died = lb.proc.poll() is not None
            rc = lb.stop()
            if not self.check_exit or checked_by_test:
                continue
            if died:
                problems.append('tcplb (pid %d) exited by itself during the '
                                'test, code %s' % (lb.pid, rc))
            elif rc != 0:
                problems.append('tcplb (pid %d) exit code %s after SIGTERM'
                                % (lb.pid, rc))
        for b in self._backends:
            b.stop()
        self._diag = '\n'.join(lb.log_tail() for lb in self._lbs
                               if lb.proc is not None)
        self._tmpobj.cleanup()
        if problems:
            raise AssertionError('; '.join(problems) + '\n' + self._diag)


# ---------------------------------------------------------------- health checks

class SwitchableHttpBackend(Backend):
    """An HTTP server whose answer to health checks can change while it runs.
    GET health_path is answered according to `health`: an int status (200,
    503, ...), 'stall' (read the request, never answer), 'close' (close
    without a byte) or 'garbage' (a line that is not HTTP). Any other path
    gets 200 with `X-Backend: NAME` and body `NAME\\n`. One request per
    connection; answers carry `Connection: close`. `checks` lists
    (monotonic time, request head) of the health requests; `requests`
    counts the others."""

    def __init__(self, name, health_path='/health', health=200):
        self.health_path = health_path
        self.health = health
        self.checks = []
        self.requests = 0
        super().__init__(name)

    def set_health(self, health):
        with self.lock:
            self.health = health

    def serve(self, conn):
        buf = b''
        while b'\r\n\r\n' not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            if len(buf) > 65536:
                return
        head = buf.partition(b'\r\n\r\n')[0].decode('latin-1')
        words = head.split('\r\n', 1)[0].split(' ')
        if len(words) > 1 and words[1] == self.health_path:
            with self.lock:
                mode = self.health
                self.checks.append((time.monotonic(), head))
            if mode == 'stall':
                while not self._stop.is_set():
                    try:
                        if not conn.recv(65536):
                            return
                    except socket.timeout:
                        continue
                return
            if mode == 'close':
                return
            if mode == 'garbage':
                conn.sendall(b'SSH-2.0-OpenSSH_9.2\r\n')
                return
            status, body = int(mode), b'health\n'
        else:
            with self.lock:
                self.requests += 1
            status, body = 200, (self.name + '\n').encode()
        conn.sendall(('HTTP/1.1 %d Status\r\nX-Backend: %s\r\n'
                      'Content-Type: text/plain\r\nContent-Length: %d\r\n'
                      'Connection: close\r\n\r\n'
                      % (status, self.name, len(body))).encode() + body)
        conn.shutdown(socket.SHUT_WR)


class ResetBeforeReplyBackend(Backend):
    """Reads the request head, then resets the connection (SO_LINGER 0)
    without sending a byte."""

    def serve(self, conn):
        import struct
        buf = b''
        while b'\r\n\r\n' not in buf and len(buf) < 65536:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))


def server_state(lb, pool, server):
    """POOL/SERVER's state in show stat json."""
    return find_server(lb.stats_json(), pool, server)['state']


def wait_server_state(lb, pool, server, states, timeout, interval=0.02):
    """Polls show stat json until POOL/SERVER's state is in states (a str or
    a tuple of them). Returns the monotonic time it was first seen there,
    or None after timeout."""
    if isinstance(states, str):
        states = (states,)
    seen = wait_until(lambda: server_state(lb, pool, server) in states and
                      time.monotonic(), timeout, interval)
    return seen or None


def tcplb_output(lb):
    """Everything tcplb has written on stdout/stderr so far (the server state
    changes are logged there)."""
    try:
        with open(lb.out_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def access_log_lines(lb):
    """The access log's lines so far (it is flushed every few ms)."""
    try:
        with open(lb.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').splitlines()
    except (OSError, TypeError):
        return []


def wait_started(lb, timeout=START_TIMEOUT):
    """Waits for tcplb's `started:` line: its signal handlers are in place
    only from then on (a SIGHUP before it would kill the process), which a
    slow start under $TCPLB_WRAPPER makes visible. Returns the line."""
    if os.environ.get('TCPLB_WRAPPER'):
        timeout = max(timeout, WRAPPED_START_TIMEOUT)
    line = wait_until(lambda: next((ln for ln in tcplb_output(lb).splitlines()
                                    if 'tcplb: started' in ln), None), timeout, 0.02)
    if not line:
        raise AssertionError('no "started" line after %.0fs\n%s'
                             % (timeout, lb.log_tail()))
    return line


class RequestLoop:
    """A steady loop of HTTP requests (a new connection each) in a thread,
    bounded in count and in time. `got` counts the answers by X-Backend,
    `errors` lists every request that did not get a 200."""

    def __init__(self, port, max_requests=1500, max_seconds=8.0, pause=0.004):
        self.port = port
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.pause = pause
        self.got = collections.Counter()
        self.errors = []
        self.done = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        end = time.monotonic() + self.max_seconds
        while (not self._stop.is_set() and self.done < self.max_requests and
               time.monotonic() < end):
            try:
                r = http_request(self.port, timeout=5)
                with self.lock:
                    if r.status == 200:
                        self.got[r.headers.get('x-backend')] += 1
                    else:
                        self.errors.append(r.status_line)
            except (OSError, AssertionError) as e:
                with self.lock:
                    self.errors.append(repr(e))
            self.done += 1
            self._stop.wait(self.pause)

    def count(self, name):
        with self.lock:
            return self.got[name]

    def running(self):
        return self._thread.is_alive()

    def wait_for(self, pred, timeout):
        """Waits (bounded) until pred(self) holds while the loop runs."""
        return wait_until(lambda: pred(self) or not self._thread.is_alive(),
                          timeout, 0.02) and pred(self)

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        return self
