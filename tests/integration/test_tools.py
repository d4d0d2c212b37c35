"""tools/logreport on a synthetic access log with known counts, and on a
real tcplb's log; tools/tcplbctl against a running tcplb: the show stat
table, pass-through commands, exit codes and the `top` view; with two
tcplb instances, the merged show stat, `agree` and per-instance answers."""

import csv
import datetime
import gzip
import io
import json
import os
import pty
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness

TOOLS = os.path.join(harness.REPO, 'tools')
LOGREPORT = os.path.join(TOOLS, 'logreport')
TCPLBCTL = os.path.join(TOOLS, 'tcplbctl')
TOOL_TIMEOUT = 30.0


def run_tool(script, args, stdin=None, env=None, timeout=TOOL_TIMEOUT):
    """Runs a tool with this interpreter; returns the CompletedProcess with
    text stdout and stderr."""
    full_env = dict(os.environ)
    full_env.pop('TCPLB_SOCKET', None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, script] + list(args),
                          input=stdin, capture_output=True, env=full_env,
                          timeout=timeout,
                          text=not isinstance(stdin, bytes))


def csv_blocks(text):
    """logreport --csv output as {section: [row dict]}, read with the csv
    module: blocks of a header row (first cell `section`) and rows."""
    blocks = {}
    header = None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            header = None
            continue
        if header is None:
            if row[0] != 'section':
                raise AssertionError('block without a header row: %r' % row)
            header = row
            continue
        blocks.setdefault(row[0], []).append(dict(zip(header, row)))
    return blocks


# ---------------------------------------------------------------- logreport

# (client, pool, listener, server, term, count). pool php: web1 48 (2 of
# them connect_fail), web2 32, web3 16, no server 4 -> imbalance 48/32 = 1.5.
# 127.0.0.5 is the hot client pinned to web1; pool api is on the next day.
SYNTHETIC = [
    ('127.0.0.5', 'php', 'web', 'web1', 'ok', 40),
    ('10.0.0.2', 'php', 'web', 'web1', 'ok', 4),
    ('10.0.0.2', 'php', 'web', 'web2', 'ok', 16),
    ('[::1]', 'php', 'web', 'web2', 'ok', 10),
    ('[::1]', 'php', 'web', 'web3', 'ok', 6),
    ('10.0.0.3', 'php', 'web', 'web1', 'ok', 2),
    ('10.0.0.3', 'php', 'web', 'web1', 'connect_fail', 2),
    ('10.0.0.3', 'php', 'web', 'web3', 'ok', 6),
    ('10.0.0.4', 'php', 'web', 'web2', 'ok', 6),
    ('10.0.0.4', 'php', 'web', 'web3', 'ok', 4),
    ('10.0.0.4', 'php', 'web', '-', 'no_server', 4),
    ('127.0.0.5', 'api', 'apil', 'api1', 'ok', 10),
]
TRUNCATED = 'ts=2026-11-26T17:31:13.123Z client=127.0.0.9:1 listener=web pool=php serv'
BAD_TS = ('ts=yesterday client=127.0.0.9:1 listener=web pool=php server=web1 '
          'bytes_in=1 bytes_out=1 term=ok')


def synthetic_log():
    """110 access lines in a fixed shuffled order, plus one tcplb message,
    a garbage line and an empty one (skipped) and two broken access lines
    (unparsable): 115 lines. ok lines carry 78 bytes in, 850 out."""
    flat = [e for e in SYNTHETIC for _ in range(e[5])]
    random.Random(5).shuffle(flat)
    lines = []
    for i, (client, pool, listener, server, term, _) in enumerate(flat):
        day = 27 if pool == 'api' else 26
        ts = (datetime.datetime(2026, 11, day, 17, 0, 0) +
              datetime.timedelta(seconds=i))
        ok = term == 'ok'
        lines.append('ts=%s.%03dZ client=%s:%d listener=%s pool=%s server=%s '
                     'connect_ms=%s duration_ms=1.5 bytes_in=%d bytes_out=%d '
                     'term=%s' % (ts.strftime('%Y-%m-%dT%H:%M:%S'), i % 1000,
                                  client, 40000 + i, listener, pool, server,
                                  '0.21' if ok else '-', 78 if ok else 0,
                                  850 if ok else 0, term))
    lines.insert(0, '2026-11-26T16:59:59.000Z tcplb: started: version 0.1.0, '
                    '2 workers, 1 listeners, 2 pools, pid 1')
    lines.insert(30, TRUNCATED)
    lines.insert(50, BAD_TS)
    lines.insert(60, 'garbage \x01 line')
    lines.insert(70, '')
    return '\n'.join(lines) + '\n'


class LogreportTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='tcplb-tools-')
        self.addCleanup(self._tmp.cleanup)
        self.log = os.path.join(self._tmp.name, 'access.log')
        self.text = synthetic_log()
        with open(self.log, 'w') as f:
            f.write(self.text)

    def report(self, *args, stdin=None):
        r = run_tool(LOGREPORT, list(args), stdin=stdin)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def report_csv(self, *args):
        return csv_blocks(self.report('--csv', *args, self.log).stdout)

    def test_per_server_counts_shares_errors_and_imbalance(self):
        b = self.report_csv()
        servers = {(r['pool'], r['server']): r for r in b['servers']}
        want = {('php', 'web1'): ('48', '48.00', '46', '2'),
                ('php', 'web2'): ('32', '32.00', '32', '0'),
                ('php', 'web3'): ('16', '16.00', '16', '0'),
                ('php', '-'): ('4', '4.00', '0', '4'),
                ('api', 'api1'): ('10', '100.00', '10', '0')}
        self.assertEqual(set(servers), set(want))
        for key, (conns, share, ok, errors) in want.items():
            r = servers[key]
            self.assertEqual((r['conns'], r['share_pct'], r['ok'], r['errors']),
                             (conns, share, ok, errors), key)
        self.assertEqual(servers[('php', 'web1')]['bytes_in'], str(46 * 78))
        self.assertEqual(servers[('php', 'web1')]['bytes_out'], str(46 * 850))
        imb = {r['pool']: r for r in b['imbalance']}
        self.assertEqual((imb['php']['servers'], imb['php']['max'],
                          imb['php']['mean'], imb['php']['imbalance']),
                         ('3', '48', '32.0000', '1.5000'))
        self.assertEqual(imb['api']['imbalance'], '1.0000')

    def test_top_clients_in_order_with_ipv6_and_busiest_server(self):
        b = self.report_csv()
        got = [(r['rank'], r['client'], r['conns'], r['share_pct'],
                r['busiest'], r['busiest_share_pct']) for r in b['clients']]
        self.assertEqual(got, [
            ('1', '127.0.0.5', '50', '45.45', 'php/web1', '80.00'),
            ('2', '10.0.0.2', '20', '18.18', 'php/web2', '80.00'),
            ('3', '::1', '16', '14.55', 'php/web2', '62.50'),
            ('4', '10.0.0.4', '14', '12.73', 'php/web2', '42.86'),
            ('5', '10.0.0.3', '10', '9.09', 'php/web3', '60.00')])

    def test_client_by_server_view(self):
        b = self.report_csv('--top', '2')
        self.assertEqual([r['client'] for r in b['clients']],
                         ['127.0.0.5', '10.0.0.2'])
        got = [(r['client'], r['pool'], r['server'], r['conns'],
                r['client_share_pct'], r['server_share_pct'])
               for r in b['client_server']]
        self.assertEqual(got, [
            ('127.0.0.5', 'php', 'web1', '40', '80.00', '83.33'),
            ('127.0.0.5', 'api', 'api1', '10', '20.00', '100.00'),
            ('10.0.0.2', 'php', 'web2', '16', '80.00', '50.00'),
            ('10.0.0.2', 'php', 'web1', '4', '20.00', '8.33')])

    def test_totals_terms_and_bad_lines(self):
        r = self.report('--csv', self.log)
        b = csv_blocks(r.stdout)
        totals = {t['key']: t['value'] for t in b['totals']}
        self.assertEqual(totals['lines'], '115')
        self.assertEqual(totals['connections'], '110')
        self.assertEqual(totals['skipped'], '2')        # tcplb line, garbage
        self.assertEqual(totals['unparsable'], '2')     # truncated, bad ts
        self.assertEqual(totals['bytes_in'], str(104 * 78))
        self.assertEqual(totals['bytes_out'], str(104 * 850))
        self.assertEqual(totals['first'], '2026-11-26T17:00:00.000Z')
        terms = {t['term']: t['conns'] for t in b['terms']}
        self.assertEqual(terms, {'ok': '104', 'no_server': '4',
                                 'connect_fail': '2'})
        self.assertIn('2 unparsable lines', r.stderr)
        self.assertIn(':31:', r.stderr)                 # file:line of one
        self.assertIn(TRUNCATED, r.stderr)

    def test_pool_filter(self):
        b = self.report_csv('--pool', 'php')
        self.assertEqual({r['pool'] for r in b['servers']}, {'php'})
        hot = b['clients'][0]
        self.assertEqual((hot['client'], hot['conns'], hot['share_pct'],
                          hot['servers'], hot['busiest_share_pct']),
                         ('127.0.0.5', '40', '40.00', '1', '100.00'))
        totals = {t['key']: t['value'] for t in b['totals']}
        self.assertEqual((totals['connections'], totals['filtered']),
                         ('100', '10'))

    def test_listener_and_time_filters(self):
        b = self.report_csv('--listener', 'apil')
        self.assertEqual([(r['pool'], r['server'], r['conns'])
                          for r in b['servers']], [('api', 'api1', '10')])
        b = self.report_csv('--since', '2026-11-27T00:00:00Z')
        self.assertEqual({r['pool'] for r in b['servers']}, {'api'})
        b = self.report_csv('--until', '2026-11-27')
        totals = {t['key']: t['value'] for t in b['totals']}
        self.assertEqual(totals['connections'], '100')

    def test_text_report_columns(self):
        out = self.report(self.log).stdout
        lines = out.splitlines()
        web1 = [l for l in lines if l.split()[:2] == ['php', 'web1']]
        self.assertEqual(len(web1), 1, out)
        self.assertEqual(web1[0].split()[2:6], ['48', '48.0%', '46', '2'])
        self.assertIn('imbalance php: max/mean 1.50 over 3 servers', out)
        # Top clients: the table after its title, busiest first.
        start = [i for i, l in enumerate(lines) if l.startswith('top 5 client IPs (of 5')]
        self.assertEqual(len(start), 1, out)
        clients = [l.split()[0] for l in lines[start[0] + 2:start[0] + 7]]
        self.assertEqual(clients, ['127.0.0.5', '10.0.0.2', '::1',
                                   '10.0.0.4', '10.0.0.3'])
        hot = lines[start[0] + 2].split()
        self.assertEqual(hot, ['127.0.0.5', '50', '45.5%', '2', 'php/web1',
                               '80.0%'])
        # Every row of a table has its numbers in the same columns.
        rows = [l for l in lines if l.startswith('php ')]
        ends = {len(l) for l in rows}
        self.assertEqual(len(ends), 1, rows)

    def test_stdin_and_gzip_give_the_same_report(self):
        from_file = self.report('--csv', self.log).stdout
        from_stdin = self.report('--csv', stdin=self.text).stdout
        from_dash = self.report('--csv', '-', stdin=self.text).stdout
        gz = self.log + '.1.gz'
        with gzip.open(gz, 'wt') as f:
            f.write(self.text)
        from_gz = self.report('--csv', gz).stdout
        self.assertEqual(from_stdin, from_file)
        self.assertEqual(from_dash, from_file)
        self.assertEqual(from_gz, from_file)

    def test_two_files_add_up(self):
        b = self.report_csv(self.log)       # the same file twice
        servers = {(r['pool'], r['server']): r['conns'] for r in b['servers']}
        self.assertEqual(servers[('php', 'web1')], '96')
        self.assertEqual(b['imbalance'][1]['imbalance'], '1.5000')

    def test_missing_file_is_reported(self):
        r = run_tool(LOGREPORT, [os.path.join(self._tmp.name, 'nope.log'),
                                 self.log])
        self.assertEqual(r.returncode, 1)
        self.assertIn('nope.log', r.stderr)
        self.assertIn('48.0%', r.stdout)    # the readable file still counts

    def test_help(self):
        for tool in (LOGREPORT, TCPLBCTL):
            r = run_tool(tool, ['--help'])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('usage:', r.stdout)


# ---------------------------------------------------------------- tcplbctl

def _default_sigint():
    """In the child: SIGINT back to its default. A suite started in the
    background inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so Ctrl-C could not be tested."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class TcplbctlTest(harness.TcplbTestCase):

    def setUp(self):
        super().setUp()
        self.a = self.backend(harness.HttpBackend, 'a')
        self.b = self.backend(harness.HttpBackend, 'b')
        self.c = self.backend(harness.HttpBackend, 'c')
        cfg = self.config(workers=2)
        self.web = cfg.listener('web', pool='p', mode='http')
        self.api = cfg.listener('api', pool='q', mode='http')
        cfg.pool('p', [('a', self.a), ('b', self.b)])
        cfg.pool('q', [('c', self.c)])
        self.sock = cfg.stats_socket
        self.lb = self.tcplb(cfg)

    def ctl(self, *args, env=None, sock=True, timeout=TOOL_TIMEOUT):
        pre = ['-s', self.sock] if sock else []
        return run_tool(TCPLBCTL, pre + list(args), env=env, timeout=timeout)

    def requests(self, port, n, source=None):
        for _ in range(n):
            self.assertEqual(harness.http_request(port, source=source).status, 200)

    def stat_rows(self, out):
        """{(pool, server): {column: cell}} from the show stat table."""
        lines = out.splitlines()
        header = lines[0].split()
        rows = {}
        for line in lines[1:]:
            if not line.strip():
                continue
            cells = line.split()
            self.assertEqual(len(cells), len(header), line)
            row = dict(zip(header, cells))
            rows[(row['pool'], row['server'])] = row
        return header, rows

    def test_show_stat_table_one_row_per_server_with_totals(self):
        self.requests(self.web, 6)
        self.requests(self.api, 2)
        js = self.settled_stats(self.lb)
        r = self.ctl('show', 'stat')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(r.stdout.startswith('#'), r.stdout)
        header, rows = self.stat_rows(r.stdout)
        want = harness.STAT_CSV_HEADER[2:].split(',')
        self.assertEqual(header[:len(want)], want)
        self.assertEqual(set(rows), {('p', 'a'), ('p', 'b'), ('q', 'c')})
        self.assertEqual(len(r.stdout.strip().splitlines()), 1 + 3 + 1,
                         r.stdout)                  # header, rows, gap
        for (pool, name), want_total, share in ((('p', 'a'), 3, '50.0%'),
                                                 (('p', 'b'), 3, '50.0%'),
                                                 (('q', 'c'), 2, '100.0%')):
            row = rows[(pool, name)]
            srv = harness.find_server(js, pool, name)
            self.assertEqual(row['total'], str(want_total), r.stdout)
            self.assertEqual(row['state'], 'up')
            self.assertEqual(row['share'], share)
            self.assertEqual(row['bytes_in'], str(srv['bytes_in']))
            self.assertEqual(row['bytes_out'], str(srv['bytes_out']))
        # Grouped by pool: a blank line between p's rows and q's.
        lines = r.stdout.splitlines()
        self.assertEqual(lines[3], '', r.stdout)
        # Numbers right-aligned: every row's total ends in the same column.
        col = lines[0].index('total') + len('total')
        for line in lines[1:]:
            if line:
                self.assertTrue(line[col - 1].isdigit(), r.stdout)

    def test_show_stat_raw_and_human(self):
        self.requests(self.web, 30)      # 99 bytes out each: over 1 KiB per server
        self.settled_stats(self.lb)
        raw = self.ctl('show', 'stat', '--raw')
        self.assertEqual(raw.returncode, 0, raw.stderr)
        self.assertEqual(raw.stdout + '\n', self.lb.stats('show stat'))
        human = self.ctl('show', 'stat', '-H')
        self.assertEqual(human.returncode, 0, human.stderr)
        _, rows = self.stat_rows(human.stdout)
        js = self.lb.stats_json()
        for (pool, name), row in rows.items():
            n = harness.find_server(js, pool, name)['bytes_out']
            want = str(n) if n < 1024 else '%.1fK' % (n / 1024.0)
            self.assertEqual(row['bytes_out'], want, human.stdout)
        self.assertTrue(any(r['bytes_out'].endswith('K') for r in rows.values()),
                        human.stdout)

    def test_passthrough_show_info_without_trailing_blank_line(self):
        r = self.ctl('show', 'info')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('version: ', r.stdout)
        self.assertTrue(r.stdout.endswith('\n') and not r.stdout.endswith('\n\n'),
                        repr(r.stdout[-50:]))
        keys = [l.split(':')[0] for l in r.stdout.splitlines()]
        direct = self.lb.stats('show info')
        self.assertEqual(keys, [l.split(':')[0] for l in direct.splitlines()
                                if l])
        js = self.ctl('show', 'stat', 'json')
        self.assertEqual(js.returncode, 0, js.stderr)
        self.assertEqual([p['name'] for p in json.loads(js.stdout)['pools']],
                         ['p', 'q'])

    def test_socket_from_environment(self):
        r = self.ctl('help', sock=False, env={'TCPLB_SOCKET': self.sock})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('show stat', r.stdout)

    def test_admin_command_passes_through(self):
        r = self.ctl('disable', 'server', 'p/a')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(harness.server_state(self.lb, 'p', 'a'), 'maint')
        _, rows = self.stat_rows(self.ctl('show', 'stat').stdout)
        self.assertEqual(rows[('p', 'a')]['state'], 'maint')
        self.assertEqual(self.ctl('enable', 'server', 'p/a').returncode, 0)
        self.assertEqual(harness.server_state(self.lb, 'p', 'a'), 'up')

    def test_error_answer_exits_1(self):
        for words in (['frobnicate', 'everything'],
                      ['disable', 'server', 'p/nosuch']):
            r = self.ctl(*words)
            self.assertEqual(r.returncode, 1, (words, r.stdout, r.stderr))
            self.assertTrue(r.stderr.startswith('error:'), r.stderr)
        self.assertTrue(self.lb.running())

    def test_unreachable_socket_exits_2(self):
        missing = os.path.join(self.tmp, 'missing.sock')
        r = run_tool(TCPLBCTL, ['-s', missing, 'show', 'info'])
        self.assertEqual(r.returncode, 2)
        self.assertIn(missing, r.stderr)
        self.assertEqual(r.stdout, '')
        # A socket file nobody listens on: connection refused.
        dead = os.path.join(self.tmp, 'dead.sock')
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(dead)
        s.close()
        for args in (['show', 'stat'], ['top', '-n', '1']):
            r = run_tool(TCPLBCTL, args, env={'TCPLB_SOCKET': dead})
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(dead, r.stderr)

    def _load(self, stop):
        while not stop.is_set():
            try:
                harness.http_request(self.web)
            except (OSError, AssertionError):
                pass
            time.sleep(0.002)

    def test_top_prints_frames_with_every_server_and_rate(self):
        stop = threading.Event()
        t = threading.Thread(target=self._load, args=(stop,), daemon=True)
        t.start()
        try:
            r = self.ctl('top', '-n', '2', '-i', '0.5')
        finally:
            stop.set()
            t.join(5)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('\x1b', r.stdout)          # not a terminal
        frames = r.stdout.rstrip('\n').split('\n\n')
        self.assertEqual(len(frames), 2, r.stdout)
        for frame in frames:
            lines = frame.splitlines()
            self.assertTrue(lines[0].startswith('tcplb top'), frame)
            self.assertIn('imbalance max/mean', lines[1])
            self.assertIn('conn/s', lines[1])
            rates = {}
            for line in lines[3:]:
                cells = line.split()
                rates[cells[0]] = (cells[1], float(cells[4]), line)
            self.assertEqual(set(rates), {'p/a', 'p/b', 'q/c'}, frame)
            self.assertEqual(rates['q/c'][1], 0.0)
        last = {l.split()[0]: l for l in frames[-1].splitlines()[3:]}
        for name in ('p/a', 'p/b'):
            self.assertGreater(float(last[name].split()[4]), 0, frames[-1])
            self.assertIn('#', last[name])
        self.assertNotIn('#', last['q/c'])

    def test_top_on_a_terminal_redraws_and_ctrl_c_exits_0(self):
        master, slave = pty.openpty()
        env = dict(os.environ, COLUMNS='80')
        proc = subprocess.Popen([sys.executable, TCPLBCTL, '-s', self.sock,
                                 'top', '-i', '0.2'],
                                stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=subprocess.PIPE, env=env,
                                preexec_fn=_default_sigint)
        os.close(slave)
        out = b''
        try:
            deadline = time.monotonic() + 10
            while out.count(b'tcplb top') < 2 and time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if ready:
                    try:
                        out += os.read(master, 65536)
                    except OSError:
                        break
            proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = 'still running 10s after SIGINT'
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
            proc.stderr.close()
        self.assertGreaterEqual(out.count(b'tcplb top'), 2, out)
        self.assertEqual(out.count(b'\x1b[H\x1b[2J'), out.count(b'tcplb top'))
        self.assertEqual(rc, 0)


# ---------------------------------------------------------------- tcplbctl, several instances

def load_tcplbctl():
    """tools/tcplbctl as a module (its sample IPs are checked against
    tcplb directly)."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader('tcplbctl_under_test',
                                                  TCPLBCTL)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def which_many(lb, pool, ips):
    """{ip: answer line} of `which POOL IP` for each ip, over one
    connection."""
    text = lb.stats_raw(''.join('which %s %s\n' % (pool, ip) for ip in ips))
    answers = text.split('\n\n')[:len(ips)]
    assert len(answers) == len(ips), text[-500:]
    return dict(zip(ips, answers))


class TcplbctlSeveralTest(harness.TcplbTestCase):
    """Two tcplb instances with the same pool p (scheduler = source, servers
    a, b, c), named one and two: -s NAME=PATH repeated."""

    def setUp(self):
        super().setUp()
        self.backends = [self.backend(harness.HttpBackend, n) for n in 'abc']
        self.lbs, self.ports, self.socks = [], [], []
        for name in ('one', 'two'):
            d = os.path.join(self.tmp, name)
            os.mkdir(d)
            cfg = harness.Config(d, workers=2)
            self.ports.append(cfg.listener('web', pool='p', mode='http'))
            cfg.pool('p', list(zip('abc', self.backends)), scheduler='source')
            self.socks.append(cfg.stats_socket)
            self.lbs.append(self.tcplb(cfg))

    def ctl(self, *args, socks=None, env=None):
        socks = socks if socks is not None else [
            'one=' + self.socks[0], 'two=' + self.socks[1]]
        pre = []
        for s in socks:
            pre += ['-s', s]
        return run_tool(TCPLBCTL, pre + list(args), env=env)

    def mapping(self, lb):
        return [p for p in lb.stats_json()['pools'] if p['name'] == 'p'][0]['mapping']

    def agree_lines(self, out):
        """(mappings {instance: digest}, differing {ip: [answer per
        instance]}, summary line) from agree's output."""
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ['instance', 'mapping'], out)
        mappings = {}
        i = 1
        while lines[i].split()[0] in ('one', 'two'):
            name, digest = lines[i].split()
            mappings[name] = digest
            i += 1
        self.assertTrue(lines[i].startswith('mapping: '), out)
        differ = {}
        rest = [l for l in lines[i + 1:-1] if l]
        if rest:
            header = rest[0]
            self.assertEqual(header.split(), ['ip', 'one', 'two'], out)
            col_two = header.index('two')
            col_one = header.index('one')
            for line in rest[1:]:
                differ[line.split()[0]] = [line[col_one:col_two].strip(),
                                           line[col_two:].strip()]
        return mappings, differ, lines[-1]

    def test_agree_same_pool_all_1000_placed_alike(self):
        r = self.ctl('agree', 'p')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        mappings, differ, summary = self.agree_lines(r.stdout)
        self.assertEqual(summary,
                         'agree: 1000 of 1000 IPs placed alike by 2 instances')
        self.assertEqual(differ, {})
        digest = self.mapping(self.lbs[0])
        self.assertRegex(digest, '^[0-9a-f]{16}$')
        self.assertEqual(mappings, {'one': digest, 'two': self.mapping(self.lbs[1])})
        self.assertEqual(mappings['one'], mappings['two'])
        self.assertIn('mapping: equal on all 2 instances', r.stdout)

    def test_sample_ips_are_deterministic_spread_and_mixed(self):
        ctl = load_tcplbctl()
        ips = ctl.ctl_sample_ips(1000)
        self.assertEqual(ips, ctl.ctl_sample_ips(1000))
        self.assertEqual(len(set(ips)), 1000)
        v6 = [ip for ip in ips if ':' in ip]
        self.assertEqual(len(v6), 8)
        firsts = {int(ip.split('.')[0]) for ip in ips if ':' not in ip}
        self.assertGreater(len(firsts), 240)         # over all of IPv4
        lasts = {ip.split('.')[3] for ip in ips if ':' not in ip}
        self.assertGreater(len(lasts), 200)

    def test_agree_after_a_weight_change_lists_exactly_the_ips_that_differ(self):
        r = run_tool(TCPLBCTL, ['-s', self.socks[0], 'set', 'weight', 'p/a', '3'])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl('agree', 'p')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        mappings, differ, summary = self.agree_lines(r.stdout)
        self.assertNotEqual(mappings['one'], mappings['two'])
        self.assertEqual(mappings['one'], self.mapping(self.lbs[0]))
        self.assertIn('mapping: 2 different digests', r.stdout)
        # The same IPs asked of tcplb directly: exactly those differ.
        ips = load_tcplbctl().ctl_sample_ips(1000)
        one = which_many(self.lbs[0], 'p', ips)
        two = which_many(self.lbs[1], 'p', ips)
        want = {ip: [one[ip], two[ip]] for ip in ips
                if one[ip].split()[0] != two[ip].split()[0]}
        self.assertGreater(len(want), 0)
        self.assertEqual(differ, want)
        self.assertEqual(summary, 'agree: %d of 1000 IPs placed alike by 2 '
                                  'instances, %d differ'
                         % (1000 - len(want), len(want)))

    def test_agree_on_explicit_ips(self):
        r = self.ctl('agree', 'p', '10.1.2.3', '192.0.2.7', '2001:db8::1',
                     '10.1.2.3')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1],
                         'agree: 3 of 3 IPs placed alike by 2 instances')
        self.lbs[1].stats('set weight p/b 4')
        ips = load_tcplbctl().ctl_sample_ips(200)
        one = which_many(self.lbs[0], 'p', ips)
        two = which_many(self.lbs[1], 'p', ips)
        same = [ip for ip in ips if one[ip].split()[0] == two[ip].split()[0]]
        moved = [ip for ip in ips if one[ip].split()[0] != two[ip].split()[0]]
        self.assertTrue(same and moved)
        r = self.ctl('agree', 'p', same[0], moved[0], same[1])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        _, differ, summary = self.agree_lines(r.stdout)
        self.assertEqual(differ, {moved[0]: [one[moved[0]], two[moved[0]]]})
        self.assertEqual(summary, 'agree: 2 of 3 IPs placed alike by 2 '
                                  'instances, 1 differ')

    def test_agree_errors_exit_2_and_bad_usage_64(self):
        r = self.ctl('agree', 'nosuch')
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("error: no pool 'nosuch'", r.stderr)
        self.assertEqual(r.stdout, '')
        missing = os.path.join(self.tmp, 'missing.sock')
        r = self.ctl('agree', 'p', socks=['one=' + self.socks[0], missing])
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(missing, r.stderr)
        self.assertEqual(r.stdout, '')
        for args in (['agree'], ['agree', 'p', 'not-an-ip'],
                     ['agree', 'p', '-n', '0']):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 64, (args, r.stdout, r.stderr))
        r = self.ctl('agree', 'p', socks=['x=' + self.socks[0],
                                          'x=' + self.socks[1]])
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn('given twice', r.stderr)

    def stat_rows(self, out):
        """[(instance, pool, server, {column: cell})] of the merged table."""
        lines = out.splitlines()
        header = lines[0].split()
        rows = []
        for line in lines[1:]:
            if not line.strip():
                continue
            cells = line.split()
            self.assertEqual(len(cells), len(header), line)
            row = dict(zip(header, cells))
            rows.append((row['instance'], row['pool'], row['server'], row))
        return header, rows

    def test_show_stat_merged_with_instance_column_and_exact_sums(self):
        hot = harness.client_ip(0)
        server = self.lbs[0].stats('which p %s' % hot).split()[0]
        self.assertEqual(self.lbs[1].stats('which p %s' % hot).split()[0], server)
        for port, n in zip(self.ports, (4, 6)):
            for _ in range(n):
                self.assertEqual(harness.http_request(port, source=hot).status, 200)
        js = []
        for lb, n in zip(self.lbs, (4, 6)):
            def settled(j, n=n):
                return sum(s['total'] for s in j['pools'][0]['servers']) == n
            js.append(self.settled_stats(lb, settled))
        r = self.ctl('show', 'stat')
        self.assertEqual(r.returncode, 0, r.stderr)
        header, rows = self.stat_rows(r.stdout)
        want = harness.STAT_CSV_HEADER[2:].split(',')
        self.assertEqual(header[:1 + len(want)], ['instance'] + want)
        self.assertEqual(header[-1], 'share')
        # Grouped by server: one, two, then the sum row.
        self.assertEqual([(i, s) for i, _, s, _ in rows],
                         [(i, s) for s in 'abc' for i in ('one', 'two', '*')])
        by = {(i, s): row for i, _, s, row in rows}
        for name in 'abc':
            a = harness.find_server(js[0], 'p', name)
            b = harness.find_server(js[1], 'p', name)
            self.assertEqual(by[('one', name)]['total'], str(a['total']))
            self.assertEqual(by[('two', name)]['total'], str(b['total']))
            total = by[('*', name)]
            for col in ('total', 'failed', 'bytes_in', 'bytes_out',
                        'requests', 'active'):
                self.assertEqual(total[col], str(a[col] + b[col]), (col, r.stdout))
            self.assertEqual((total['state'], total['weight']), ('up', '1'))
        self.assertEqual(by[('*', server)]['total'], '10', r.stdout)
        self.assertEqual(by[('*', server)]['requests'], '10', r.stdout)
        self.assertEqual(by[('one', server)]['total'], '4')
        self.assertEqual(by[('two', server)]['total'], '6')
        self.assertEqual(by[('*', server)]['share'], '100.0%')
        for name in set('abc') - {server}:
            self.assertEqual(by[('*', name)]['total'], '0')
        # Numbers right aligned: every row's total ends in the same column.
        lines = r.stdout.splitlines()
        col = lines[0].index('total') + len('total')
        for line in lines[1:]:
            self.assertTrue(line[col - 1].isdigit(), r.stdout)
        # What differs between the instances is joined on the sum row.
        self.lbs[0].stats('disable server p/c')
        self.lbs[1].stats('set weight p/b 3')
        _, rows = self.stat_rows(self.ctl('show', 'stat').stdout)
        by = {(i, s): row for i, _, s, row in rows}
        self.assertEqual(by[('*', 'c')]['state'], 'maint|up')
        self.assertEqual(by[('*', 'b')]['weight'], '1|3')
        self.assertEqual(by[('*', 'a')]['weight'], '1')
        # --raw: one CSV with an instance column and no sum rows.
        raw = self.ctl('show', 'stat', '--raw')
        self.assertEqual(raw.returncode, 0, raw.stderr)
        lines = raw.stdout.splitlines()
        self.assertEqual(lines[0], '# instance,' + harness.STAT_CSV_HEADER[2:])
        self.assertEqual([l.split(',')[:3] for l in lines[1:]],
                         [[i, 'p', s] for i in ('one', 'two') for s in 'abc'])

    def test_show_stat_with_an_unreachable_instance_shows_the_rest_and_exits_2(self):
        missing = os.path.join(self.tmp, 'missing.sock')
        r = self.ctl('show', 'stat', socks=['one=' + self.socks[0], missing])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(missing, r.stderr)
        _, rows = self.stat_rows(r.stdout)
        self.assertEqual([(i, s) for i, _, s, _ in rows],
                         [(i, s) for s in 'abc' for i in ('one', '*')])

    def test_other_commands_go_to_each_instance_under_a_header(self):
        r = self.ctl('show', 'info')
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], '== one ==')
        self.assertIn('== two ==', lines)
        two = lines.index('== two ==')
        self.assertEqual(lines[two - 1], '')
        pids = [l for l in lines if l.startswith('pid: ')]
        self.assertEqual(pids, ['pid: %d' % self.lbs[0].pid,
                                'pid: %d' % self.lbs[1].pid])
        r = self.ctl('set', 'weight', 'p/a', '2')
        self.assertEqual(r.returncode, 0, r.stderr)
        for lb in self.lbs:
            self.assertEqual(harness.find_server(lb.stats_json(), 'p', 'a')['weight'], 2)
        r = self.ctl('disable', 'server', 'p/nosuch')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr.count('error:'), 2, r.stderr)
        missing = os.path.join(self.tmp, 'missing.sock')
        r = self.ctl('show', 'info', socks=[missing, 'two=' + self.socks[1]])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('== %s ==' % missing, r.stdout)
        self.assertIn('pid: %d' % self.lbs[1].pid, r.stdout)
        r = self.ctl('top', '-n', '1')
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn('one instance', r.stderr)

    def test_one_socket_works_as_before(self):
        path = self.socks[0]
        plain = run_tool(TCPLBCTL, ['-s', path, 'show', 'stat'])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        header = plain.stdout.splitlines()[0].split()
        self.assertEqual(header[0], 'pool')
        self.assertNotIn('instance', header)
        self.assertNotIn('*', plain.stdout)
        named = run_tool(TCPLBCTL, ['-s', 'one=' + path, 'show', 'stat'])
        env = run_tool(TCPLBCTL, ['show', 'stat'], env={'TCPLB_SOCKET': path})
        self.assertEqual(named.stdout, plain.stdout)
        self.assertEqual(env.stdout, plain.stdout)
        info = run_tool(TCPLBCTL, ['-s', path, 'show', 'info'])
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertNotIn('==', info.stdout)
        self.assertTrue(info.stdout.startswith('version: '), info.stdout)
        raw = run_tool(TCPLBCTL, ['-s', path, 'show', 'stat', '--raw'])
        self.assertTrue(raw.stdout.startswith('# pool,'), raw.stdout)
        top = run_tool(TCPLBCTL, ['-s', 'one=' + path, 'top', '-n', '1',
                                  '-i', '0.1'])
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertIn('p/a', top.stdout)
        # agree with one instance: the pool's digest, nothing to differ.
        r = run_tool(TCPLBCTL, ['-s', path, 'agree', 'p', '-n', '50'])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(self.mapping(self.lbs[0]), r.stdout)
        self.assertEqual(r.stdout.splitlines()[-1],
                         'agree: 50 of 50 IPs placed alike by 1 instance')


# ---------------------------------------------------------------- both

class LogreportOnTcplbTest(harness.TcplbTestCase):

    def test_report_of_a_real_access_log_matches_the_counters(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        cfg = self.config(workers=2)
        port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', a), ('b', b)])
        lb = self.tcplb(cfg)
        hot, cold = harness.client_ip(3), harness.client_ip(4)
        for source in [hot] * 6 + [cold] * 2:
            self.assertEqual(harness.http_request(port, source=source).status, 200)
        js = self.settled_stats(lb)
        harness.wait_until(lambda: len(harness.access_log_lines(lb)) >= 8, 3.0)
        r = run_tool(LOGREPORT, ['--csv', lb.log_path])
        self.assertEqual(r.returncode, 0, r.stderr)
        blocks = csv_blocks(r.stdout)
        got = {r['server']: int(r['conns']) for r in blocks['servers']}
        self.assertEqual(got, {'a': harness.find_server(js, 'p', 'a')['total'],
                               'b': harness.find_server(js, 'p', 'b')['total']})
        self.assertEqual(got, {'a': 4, 'b': 4})
        self.assertEqual(blocks['imbalance'][0]['imbalance'], '1.0000')
        self.assertEqual([(c['client'], c['conns']) for c in blocks['clients']],
                         [(hot, '6'), (cold, '2')])
        totals = {t['key']: t['value'] for t in blocks['totals']}
        self.assertEqual((totals['connections'], totals['unparsable']),
                         ('8', '0'))
        self.assertEqual(int(totals['bytes_out']),
                         sum(s['bytes_out'] for s in js['pools'][0]['servers']))


if __name__ == '__main__':
    unittest.main()
