"""Chaos tests: real tcplb-backend processes killed with SIGKILL
under bounded load, then restarted on the same port.

    python3 tests/integration/run.py --build build --dir tests/chaos

Six client threads make short HTTP requests through tcplb (a new connection
each, `Connection: close`; the backends hold each answer 30 ms, so some are
in flight at any moment) for a fixed time, recording for each request its
start and end time, its status or error and the X-Backend that answered. A
poller thread samples `show stat json` every 25 ms. Each scenario prints a
report: failed requests split into in-flight-at-kill and new, detection and
recovery times, and requests per server per second before, during and after.

Bounds: with health_interval I, health_timeout T, fall F and rise R, a killed
server is down within I x F + T (plus 1 s slack; passive checks from traffic
usually make it much faster) and a restarted one up within I x R (+1 s)."""

import os
import random
import signal
import subprocess
import threading
import time
import unittest

import harness

INTERVAL = 0.5
TIMEOUT = 0.3
FALL = 2
RISE = 2
RETRIES = 2
SLACK = 1.0
DETECT_BOUND = INTERVAL * FALL + TIMEOUT + SLACK
RECOVER_BOUND = INTERVAL * RISE + SLACK
CLIENTS = 6
PAUSE = 0.02            # mean pause between one thread's requests: bounded load
REQUEST_TIMEOUT = 5.0   # client socket timeout; a request over 3 s is a hang
HANG = 3.0
POLL = 0.025
DELAY_MS = 30           # backends hold each answer this long, so that some
                        # requests are in flight when one is killed


def backend_bin():
    """tcplb-backend next to the tcplb under test."""
    return os.path.join(os.path.dirname(harness.tcplb_bin()), 'tcplb-backend')


class BackendProcess:
    """One tcplb-backend process in http mode. Started on port 0 it learns its
    port from its `listening NAME HOST:PORT` line; restart() binds the same
    port again. Only ever signalled by its own PID."""

    def __init__(self, tmpdir, name, delay_ms=0):
        self.tmpdir = tmpdir
        self.name = name
        self.delay_ms = delay_ms
        self.port = 0
        self.proc = None
        self.runs = 0

    def start(self, timeout=5.0):
        binary = backend_bin()
        if not os.access(binary, os.X_OK):
            raise AssertionError('%s not found (make all builds it)' % binary)
        self.runs += 1
        out_path = os.path.join(self.tmpdir, '%s.%d.out' % (self.name, self.runs))
        deadline = time.monotonic() + timeout
        while True:
            with open(out_path, 'wb') as out:
                self.proc = subprocess.Popen(
                    [binary, '--name', self.name, '--listen',
                     '%s:%d' % (harness.HOST, self.port), '--mode', 'http',
                     '--delay', str(self.delay_ms)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    close_fds=True)
            line = self._wait_listening(out_path, deadline)
            if line:
                break
            # exited (the port may still be held a moment after a kill): retry
            if time.monotonic() >= deadline:
                raise AssertionError('%s did not start: %s'
                                     % (self.name, open(out_path).read()[-2000:]))
            time.sleep(0.05)
        port = int(line.split()[2].rsplit(':', 1)[1])
        if self.port:
            assert port == self.port, (port, self.port)
        self.port = port
        return self

    def _wait_listening(self, path, deadline):
        prefix = 'listening %s ' % self.name
        while True:
            with open(path, 'r', errors='replace') as f:
                for line in f:
                    if line.startswith(prefix):
                        return line.strip()
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                if self.proc.poll() is None:
                    self.kill9()
                return None
            time.sleep(0.01)

    @property
    def addr(self):
        return '%s:%d' % (harness.HOST, self.port)

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(5)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class Load:
    """CLIENTS threads making one request per new connection until `until`.
    records: (start, end, status or None, error or None, x-backend)."""

    def __init__(self, port):
        self.port = port
        self.records = []
        self.lock = threading.Lock()
        self.threads = []
        self.until = 0.0

    def start(self, duration):
        self.until = time.monotonic() + duration
        for i in range(CLIENTS):
            t = threading.Thread(target=self._run, name='chaos-client-%d' % i,
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self):
        rnd = random.Random()           # jitter: threads out of phase
        while time.monotonic() < self.until:
            t0 = time.monotonic()
            status = error = backend = None
            try:
                r = harness.http_request(self.port, path='/chaos',
                                         timeout=REQUEST_TIMEOUT)
                status = r.status
                backend = r.headers.get('x-backend')
            except Exception as e:          # reset, timeout, EOF mid-head
                error = '%s: %s' % (type(e).__name__, str(e)[:60])
            with self.lock:
                self.records.append((t0, time.monotonic(), status, error, backend))
            time.sleep(rnd.uniform(0, 2 * PAUSE))

    def join(self):
        for t in self.threads:
            t.join(REQUEST_TIMEOUT + 5)
        return sorted(self.records)


class Poller:
    """Samples every server's state from show stat json."""

    def __init__(self, lb, pool='p'):
        self.lb = lb
        self.pool = pool
        self.samples = []       # (monotonic time after the answer, {name: state})
        self.errors = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name='chaos-poller',
                                       daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                js = self.lb.stats_json()
                states = {s['name']: s['state'] for p in js['pools']
                          if p['name'] == self.pool for s in p['servers']}
                self.samples.append((time.monotonic(), states))
            except Exception as e:
                self.errors.append(repr(e))
            self._stop.wait(POLL)

    def stop(self):
        self._stop.set()
        self.thread.join(5)

    def first(self, pred, after):
        """Time of the first sample at or after `after` where pred(states)."""
        for t, st in self.samples:
            if t >= after and pred(st):
                return t
        return None

    def last(self, pred, before):
        """Time of the last sample before `before` where pred(states)."""
        found = None
        for t, st in self.samples:
            if t >= before:
                break
            if pred(st):
                found = t
        return found

    def all_between(self, pred, t1, t2):
        return all(pred(st) for t, st in self.samples if t1 <= t <= t2)


def failed(rec):
    return rec[2] != 200


def rates(records, names, phases):
    """{name: [req/s in each (t1, t2) phase]} counting 200s by start time."""
    out = {}
    for name in names:
        row = []
        for t1, t2 in phases:
            n = sum(1 for r in records if t1 <= r[0] < t2 and r[2] == 200
                    and r[4] == name)
            row.append(n / (t2 - t1) if t2 > t1 else 0.0)
        out[name] = row
    return out


def describe_failures(recs, limit=5):
    kinds = {}
    for r in recs:
        k = r[3] or 'HTTP %s' % r[2]
        kinds[k] = kinds.get(k, 0) + 1
    return ', '.join('%d x %s' % (n, k) for k, n in
                     sorted(kinds.items(), key=lambda kv: -kv[1])[:limit]) or '-'


class ChaosTest(harness.TcplbTestCase):

    def start_all(self, n=3):
        backends = []
        for i in range(n):
            b = BackendProcess(self.tmp, 'b%d' % (i + 1), DELAY_MS).start()
            self.addCleanup(b.stop)
            backends.append(b)
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [(b.name, b.addr) for b in backends],
                 scheduler='roundrobin', retries=RETRIES, connect_timeout='1s',
                 server_timeout='5s', health='tcp',
                 health_interval='%dms' % (INTERVAL * 1000),
                 health_timeout='%dms' % (TIMEOUT * 1000), rise=RISE, fall=FALL)
        lb = self.tcplb(cfg)
        # every server up and answering before the load starts
        for b in backends:
            self.assertIsNotNone(harness.wait_server_state(lb, 'p', b.name, 'up', 3))
        got = {harness.http_request(port, timeout=5).headers.get('x-backend')
               for _ in range(2 * n)}
        self.assertEqual(got, {b.name for b in backends})
        poller = Poller(lb)
        self.addCleanup(poller.stop)
        return backends, lb, port, poller

    def report(self, title, lines):
        print('\n  -- %s --' % title)
        for line in lines:
            print('  ' + line)
        print('  ', end='', flush=True)

    def rate_table(self, records, names, phases):
        table = rates(records, names, phases)
        lines = ['req/s per server   before   during    after']
        for name in names:
            lines.append('  %-14s %8.1f %8.1f %8.1f' % ((name,) + tuple(table[name])))
        return lines, table

    # ------------------------------------------------------------------ A

    def test_kill_one_backend_then_restart_it(self):
        backends, lb, port, poller = self.start_all()
        victim = backends[1]
        names = [b.name for b in backends]
        load = Load(port)
        t0 = time.monotonic()
        load.start(8.0)

        time.sleep(max(0.0, t0 + 1.5 - time.monotonic()))
        t_kill = time.monotonic()
        victim.kill9()
        t_killed = time.monotonic()         # reaped: its sockets are gone

        time.sleep(max(0.0, t0 + 4.5 - time.monotonic()))
        victim.start()
        t_restart = time.monotonic()        # listening again

        records = load.join()
        t_end = max(r[1] for r in records)
        time.sleep(2 * POLL)
        poller.stop()

        is_down = lambda st: st.get(victim.name) == 'down'
        is_up = lambda st: st.get(victim.name) == 'up'
        t_detect = poller.first(is_down, t_kill)
        t_up = poller.first(is_up, t_restart) if t_detect else None
        t_last_down = poller.last(is_down, t_up) if t_up else None

        before = [r for r in records if r[0] < t_kill]
        inflight = [r for r in before if r[1] >= t_kill]
        new = [r for r in records if r[0] >= t_killed]
        kill_window = [r for r in records if t_kill <= r[0] < t_killed]
        f_before = [r for r in before if failed(r) and r[1] < t_kill]
        f_inflight = [r for r in inflight + kill_window if failed(r)]
        f_new = [r for r in new if failed(r)]
        phases = [(t0, t_kill), (t_kill, t_up or t_end), (t_up or t_end, t_end)]
        table_lines, table = self.rate_table(records, names, phases)
        detect = (t_detect - t_kill) if t_detect else None
        recover = (t_up - t_restart) if t_up else None
        self.report('chaos A: kill -9 %s at +%.2fs, restart at +%.2fs'
                    % (victim.name, t_kill - t0, t_restart - t0), [
            'requests %d (%.0f/s), failed %d: in-flight at kill %d, new %d, '
            'before the kill %d'
            % (len(records), len(records) / (t_end - t0),
               len(f_before) + len(f_inflight) + len(f_new),
               len(f_inflight), len(f_new), len(f_before)),
            'in-flight failures: %s' % describe_failures(f_inflight),
            'new failures: %s' % describe_failures(f_new),
            'detection %s (bound %.2fs), recovery %s after restart (bound %.2fs)'
            % ('%.3fs' % detect if detect is not None else 'NEVER', DETECT_BOUND,
               '%.3fs' % recover if recover is not None else 'NEVER',
               RECOVER_BOUND),
            'state polls %d, poll errors %d' % (len(poller.samples),
                                                len(poller.errors)),
        ] + table_lines)

        self.assertFalse(poller.errors[:3])
        self.assertEqual(f_before, [], 'failures before the kill')
        self.assertIsNotNone(t_detect, '%s never seen down' % victim.name)
        self.assertLessEqual(detect, DETECT_BOUND)
        self.assertEqual(f_new, [], 'requests started after the kill failed '
                         '(retries=%d should hide the dead server): %s'
                         % (RETRIES, describe_failures(f_new)))
        self.assertIsNotNone(t_up, '%s never seen up after restart' % victim.name)
        self.assertLessEqual(recover, RECOVER_BOUND)
        # while down (detection + 0.2 s up to the last poll that saw it down)
        # no new request went to it, though it was listening again for part
        # of that time
        self.assertTrue(poller.all_between(is_down, t_detect, t_last_down),
                        'state flapped while it was down')
        while_down = [r for r in records if t_detect + 0.2 <= r[0] <= t_last_down
                      and r[4] == victim.name]
        self.assertEqual(while_down, [], 'requests went to %s while down'
                         % victim.name)
        # the others took the load; the victim gets traffic again after up
        for name in names:
            self.assertGreater(table[name][0], 0, name)
        for b in backends:
            if b is not victim:
                self.assertGreater(table[b.name][1], 0, b.name)
        after_up = [r for r in records if r[0] >= t_up and r[4] == victim.name]
        self.assertGreater(len(after_up), 0, '%s got no traffic after up'
                           % victim.name)
        # tcplb's own counters agree that it failed only a little
        js = self.settled_stats(lb)
        self.assertEqual(harness.find_listener(js, 'web')['http_504'], 0)

    # ------------------------------------------------------------------ B

    def test_kill_all_backends_then_restart_them(self):
        backends, lb, port, poller = self.start_all()
        names = [b.name for b in backends]
        load = Load(port)
        t0 = time.monotonic()
        load.start(7.0)

        time.sleep(max(0.0, t0 + 1.5 - time.monotonic()))
        t_kill = time.monotonic()
        for b in backends:
            os.kill(b.proc.pid, signal.SIGKILL)
        for b in backends:
            b.kill9()                       # reaps
        t_killed = time.monotonic()

        time.sleep(max(0.0, t0 + 4.5 - time.monotonic()))
        for b in backends:
            b.start()
        t_restart = time.monotonic()

        records = load.join()
        t_end = max(r[1] for r in records)
        time.sleep(2 * POLL)
        poller.stop()

        all_down = lambda st: all(st.get(n) == 'down' for n in names)
        all_up = lambda st: all(st.get(n) == 'up' for n in names)
        t_detect = poller.first(all_down, t_kill)
        t_up = poller.first(all_up, t_restart)
        first_200 = min((r[1] for r in records if r[0] >= t_restart and
                         r[2] == 200), default=None)

        before = [r for r in records if r[0] < t_kill]
        f_before = [r for r in before if failed(r) and r[1] < t_kill]
        f_inflight = [r for r in records if failed(r) and
                      ((r[0] < t_kill <= r[1]) or t_kill <= r[0] < t_killed)]
        dead_time = [r for r in records if t_killed <= r[0] < t_restart]
        not_503 = [r for r in dead_time if r[2] != 503]
        hung = [r for r in records if r[0] >= t_kill and r[1] - r[0] > HANG]
        longest = max((r[1] - r[0] for r in records if r[0] >= t_kill),
                      default=0.0)
        settle = t_restart + RECOVER_BOUND
        late_bad = [r for r in records if r[0] >= settle and failed(r)]
        phases = [(t0, t_kill), (t_kill, t_up or t_end), (t_up or t_end, t_end)]
        table_lines, table = self.rate_table(records, names, phases)
        detect = (t_detect - t_kill) if t_detect else None
        recover = (first_200 - t_restart) if first_200 else None
        all_recover = (t_up - t_restart) if t_up else None
        self.report('chaos B: kill -9 all at +%.2fs, restart all at +%.2fs'
                    % (t_kill - t0, t_restart - t0), [
            'requests %d, failed %d: in-flight at kill %d (%s), before %d'
            % (len(records), sum(1 for r in records if failed(r)),
               len(f_inflight), describe_failures(f_inflight), len(f_before)),
            'while all dead: %d requests, %d answered 503, other: %s; '
            'longest request after the kill %.3fs'
            % (len(dead_time), len(dead_time) - len(not_503),
               describe_failures(not_503), longest),
            'all down %s after the kill (bound %.2fs)'
            % ('%.3fs' % detect if detect is not None else 'NEVER', DETECT_BOUND),
            'recovery: first 200 %s, all up %s after restart (bound %.2fs)'
            % ('%.3fs' % recover if recover is not None else 'NEVER',
               '%.3fs' % all_recover if all_recover is not None else 'NEVER',
               RECOVER_BOUND),
        ] + table_lines)

        self.assertFalse(poller.errors[:3])
        self.assertEqual(f_before, [], 'failures before the kill')
        self.assertEqual(hung, [], '%d requests took over %.0fs' % (len(hung), HANG))
        self.assertGreater(len(dead_time), 10, 'too little load while dead')
        self.assertEqual(not_503, [], 'while every server was dead, answers '
                         'other than 503: %s' % describe_failures(not_503))
        self.assertIsNotNone(t_detect)
        self.assertLessEqual(detect, DETECT_BOUND)
        self.assertIsNotNone(first_200, 'no 200 after the restart')
        self.assertLessEqual(recover, RECOVER_BOUND)
        self.assertIsNotNone(t_up, 'not all up after the restart')
        self.assertLessEqual(all_recover, RECOVER_BOUND)
        self.assertEqual(late_bad, [], 'failures %.1fs after the restart: %s'
                         % (RECOVER_BOUND, describe_failures(late_bad)))
        for name in names:
            self.assertGreater(table[name][2], 0, '%s got no traffic after' % name)
        js = self.settled_stats(lb)
        lst = harness.find_listener(js, 'web')
        self.assertGreaterEqual(lst['rejected'], len(dead_time))


if __name__ == '__main__':
    unittest.main()
