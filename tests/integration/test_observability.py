"""Observability (docs/reference.md: Stats socket; Access log; Metrics and the page): every stats socket
command and its answers to bad input, the protocol's limits (overlong
lines, binary garbage, several commands in one write), the access log line
of each `term`, SIGUSR1 reopening and `log = off`, and stats_http:
/metrics read by a strict parser of the Prometheus text format 0.0.4 and
compared with `show stat json`, /stats.json, 404, 405 and HEAD."""

import json
import math
import os
import random
import re
import signal
import socket
import struct
import time
import unittest

import harness

# ---------------------------------------------------------------- helpers

TS = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'

# docs/reference.md: Access log: every field, in this order, nothing else.
LOG_RE = re.compile(
    r'^ts=(?P<ts>' + TS + r') client=(?P<client>\S+) listener=(?P<listener>\S+)'
    r' pool=(?P<pool>\S+) server=(?P<server>\S+)'
    r' connect_ms=(?P<connect_ms>-|\d+\.\d+) duration_ms=(?P<duration_ms>\d+\.\d+)'
    r' bytes_in=(?P<bytes_in>\d+) bytes_out=(?P<bytes_out>\d+)'
    r' term=(?P<term>[a-z_]+) requests=(?P<requests>\d+)'
    r' rt_ms=(?P<rt_ms>-|\d+\.\d+)(?: status=(?P<status>-|\d{3}))?$')

EVENT_RE = re.compile(
    r'^(?P<ts>' + TS + r') (?P<pool>[^/ ]+)/(?P<server>\S+)'
    r' (?P<old>up|down|drain|maint)->(?P<new>up|down|drain|maint) (?P<reason>.+);'
    r' cost: failed=(?P<failed>\d+) retried=(?P<retried>\d+) lost=(?P<lost>\d+)$')


def split_answers(text):
    """A stats reply as a list of answers, each a list of lines; every answer
    ends with an empty line, so an empty answer is []. Fails on a reply whose
    last answer is not ended."""
    if text == '':
        return []
    if not text.endswith('\n\n') and text != '\n':
        raise AssertionError('reply does not end with an empty line: %r'
                             % text[-300:])
    out, cur = [], []
    for line in text.split('\n')[:-1]:
        if line == '':
            out.append(cur)
            cur = []
        else:
            cur.append(line)
    return out


def stats_bytes(lb, chunks, pause=0.0, timeout=5.0):
    """Sends bytes (one bytes object, or a list sent one write each with
    `pause` seconds between) to the stats socket, shuts down the write side
    and returns the whole reply, decoded."""
    if isinstance(chunks, bytes):
        chunks = [chunks]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(lb.stats_socket)
        for i, c in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            s.sendall(c)
        s.shutdown(socket.SHUT_WR)
        return harness.recv_until_eof(s).decode('utf-8', 'replace')
    finally:
        s.close()


def one_answer(lb, cmd):
    """The single answer to cmd, as text without its ending empty line."""
    parts = split_answers(lb.stats(cmd))
    if len(parts) != 1:
        raise AssertionError('%r: expected one answer, got %r' % (cmd, parts))
    return '\n'.join(parts[0])


def served_by(port, source=None):
    """Makes one HTTP request (from `source`) and returns the backend name
    that answered."""
    r = harness.http_request(port, source=source)
    if r.status != 200:
        raise AssertionError('request failed: %r' % r)
    return r.headers['x-backend']


def totals(js, pool):
    return {s['name']: s['total'] for p in js['pools'] if p['name'] == pool
            for s in p['servers']}


def rst_close(sock):
    """Closes with a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    sock.close()


def access_lines_for(lb, addr, timeout=5.0, path=None):
    """Waits for the access log line(s) of the client connection whose local
    address was addr (an (ip, port) from getsockname()) and returns them."""
    tag = ' client=%s:%d ' % (addr[0], addr[1])

    def find():
        lines = read_lines(path or lb.log_path)
        return [l for l in lines if tag in ' ' + l]
    return harness.wait_until(find, timeout, 0.05) or []


def read_lines(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').splitlines()
    except OSError:
        return []


def http_raw(port, request, timeout=5.0):
    """Sends a raw request, reads to EOF; returns (status, headers, body)
    with lower-case header names."""
    s = socket.create_connection((harness.HOST, port), timeout=timeout)
    try:
        s.sendall(request)
        data = harness.recv_until_eof(s)
    finally:
        s.close()
    head, sep, body = data.partition(b'\r\n\r\n')
    if not sep:
        raise AssertionError('no complete response head: %r' % data[:500])
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split(' ')[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def http_get(port, path, method='GET'):
    return http_raw(port, ('%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n'
                           '\r\n' % (method, path, harness.HOST, port)).encode())


# ---------------------------------------------------------------- Prometheus text

class PromError(AssertionError):
    pass


_NAME = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
_LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
_VALUE = re.compile(r'^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$')
_TYPES = ('counter', 'gauge', 'histogram')


def _prom_float(text, where):
    if not _VALUE.match(text):
        raise PromError('%s: bad value %r' % (where, text))
    return float(text.replace('Inf', 'inf').replace('NaN', 'nan'))


def _prom_labels(text, i, where):
    """Parses `{a="x",b="y"}` from text[i] == '{'; returns (dict, next i)."""
    labels = {}
    i += 1
    while True:
        if text.startswith('}', i):
            return labels, i + 1
        m = _LABEL.match(text, i)
        if not m:
            raise PromError('%s: bad label name at %r' % (where, text[i:i + 20]))
        name = m.group(0)
        i = m.end()
        if not text.startswith('="', i):
            raise PromError('%s: expected =" after label %s' % (where, name))
        i += 2
        value = []
        while True:
            if i >= len(text):
                raise PromError('%s: unterminated label value' % where)
            c = text[i]
            if c == '\\':
                esc = text[i + 1:i + 2]
                if esc not in ('\\', '"', 'n'):
                    raise PromError('%s: bad escape \\%s' % (where, esc))
                value.append('\n' if esc == 'n' else esc)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == '\n':
                raise PromError('%s: newline in label value' % where)
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise PromError('%s: label %s twice' % (where, name))
        labels[name] = ''.join(value)
        if text.startswith(',', i):
            i += 1
        elif not text.startswith('}', i):
            raise PromError('%s: expected , or } at %r' % (where, text[i:i + 20]))


def parse_prometheus(text):
    """A strict reading of the Prometheus text exposition format 0.0.4.

    Returns {family: {'type', 'help', 'samples': [(name, labels, value)]}}.
    Raises PromError unless: the text ends with a newline; every family has
    exactly one HELP and one TYPE line, both before its first sample; TYPE
    is counter, gauge or histogram; a family's samples are contiguous and
    named as its type requires (histogram: _bucket/_sum/_count); label
    syntax, escapes and values are valid; no sample repeats; counters are
    not negative; per histogram series the `le` bounds increase, the bucket
    counts never decrease, the last bucket is le="+Inf" and equals _count,
    and _sum is present."""
    if not text.endswith('\n'):
        raise PromError('text does not end with a newline')
    fams = {}
    closed = set()
    current = None
    seen = set()
    for lineno, line in enumerate(text.split('\n')[:-1], 1):
        where = 'line %d' % lineno
        if line == '':
            continue
        if line.startswith('#'):
            parts = line.split(' ', 3)
            if len(parts) >= 3 and parts[0] == '#' and parts[1] in ('HELP', 'TYPE'):
                kind, name = parts[1], parts[2]
                if not _NAME.match(name):
                    raise PromError('%s: bad metric name %r' % (where, name))
                fam = fams.setdefault(name, {'type': None, 'help': None,
                                             'samples': []})
                if fam['samples']:
                    raise PromError('%s: %s of %s after its samples' % (where, kind, name))
                if kind == 'HELP':
                    if fam['help'] is not None:
                        raise PromError('%s: second HELP for %s' % (where, name))
                    doc = parts[3] if len(parts) > 3 else ''
                    if '\\' in re.sub(r'\\[\\n]', '', doc):
                        raise PromError('%s: bad escape in HELP %r' % (where, doc))
                    fam['help'] = doc
                else:
                    if fam['type'] is not None:
                        raise PromError('%s: second TYPE for %s' % (where, name))
                    if len(parts) != 4 or parts[3] not in _TYPES:
                        raise PromError('%s: bad TYPE line %r' % (where, line))
                    fam['type'] = parts[3]
            continue      # any other comment is allowed and ignored
        m = re.match(r'[a-zA-Z_:][a-zA-Z0-9_:]*', line)
        if not m:
            raise PromError('%s: bad sample line %r' % (where, line))
        name = m.group(0)
        i = m.end()
        labels = {}
        if line.startswith('{', i):
            labels, i = _prom_labels(line, i, where)
        if not line.startswith(' ', i):
            raise PromError('%s: expected a space before the value: %r' % (where, line))
        rest = line[i + 1:].split(' ')
        if len(rest) not in (1, 2) or (len(rest) == 2 and
                                       not re.match(r'^-?\d+$', rest[1])):
            raise PromError('%s: bad value/timestamp %r' % (where, line[i:]))
        value = _prom_float(rest[0], where)
        family = None
        if name in fams and fams[name]['type'] in ('counter', 'gauge'):
            family = name
        else:
            for suffix in ('_bucket', '_sum', '_count'):
                base = name[:-len(suffix)]
                if name.endswith(suffix) and base in fams and \
                        fams[base]['type'] == 'histogram':
                    family = base
        if family is None:
            raise PromError('%s: sample %s has no TYPE before it' % (where, name))
        fam = fams[family]
        if fam['help'] is None:
            raise PromError('%s: sample %s has no HELP before it' % (where, name))
        if family != current:
            if family in closed:
                raise PromError('%s: samples of %s are not together' % (where, family))
            if current is not None:
                closed.add(current)
            current = family
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise PromError('%s: sample repeated: %s%s' % (where, name, labels))
        seen.add(key)
        if fam['type'] == 'counter' and not value >= 0:
            raise PromError('%s: counter %s is %r' % (where, name, value))
        if name.endswith('_bucket') and fam['type'] == 'histogram' and 'le' not in labels:
            raise PromError('%s: bucket without le' % where)
        if fam['type'] == 'histogram' and not name.endswith('_bucket') and 'le' in labels:
            raise PromError('%s: le on %s' % (where, name))
        fam['samples'].append((name, labels, value))
    for name, fam in fams.items():
        if fam['type'] is None or fam['help'] is None:
            raise PromError('family %s lacks a %s line' % (name, 'TYPE' if fam['type']
                                                          is None else 'HELP'))
        if fam['type'] == 'histogram':
            _prom_check_histogram(name, fam['samples'])
    return fams


def _prom_check_histogram(name, samples):
    series = {}
    for sname, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != 'le'))
        s = series.setdefault(key, {'buckets': [], 'sum': None, 'count': None})
        if sname == name + '_bucket':
            s['buckets'].append((labels['le'], value))
        elif sname == name + '_sum':
            s['sum'] = value
        else:
            s['count'] = value
    for key, s in series.items():
        where = '%s%s' % (name, dict(key))
        if not s['buckets']:
            raise PromError('%s: no buckets' % where)
        if s['sum'] is None or s['count'] is None:
            raise PromError('%s: _sum or _count missing' % where)
        bounds = [_prom_float(le, where) for le, _ in s['buckets']]
        if s['buckets'][-1][0] != '+Inf':
            raise PromError('%s: last bucket is le=%r, not "+Inf"'
                            % (where, s['buckets'][-1][0]))
        if any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise PromError('%s: le bounds not increasing: %r' % (where, bounds))
        counts = [v for _, v in s['buckets']]
        if any(v != math.floor(v) or v < 0 for v in counts):
            raise PromError('%s: bucket counts not whole: %r' % (where, counts))
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise PromError('%s: buckets not cumulative: %r' % (where, counts))
        if counts[-1] != s['count']:
            raise PromError('%s: +Inf bucket %r != _count %r'
                            % (where, counts[-1], s['count']))


def prom_value(fams, family, name=None, **labels):
    """The value of the one sample of `family` named `name` (default: the
    family name) whose labels are exactly `labels`."""
    name = name or family
    got = [v for n, l, v in fams[family]['samples'] if n == name and l == labels]
    if len(got) != 1:
        raise AssertionError('%d samples %s%s in %s' % (len(got), name, labels,
                                                       fams[family]['samples'][:8]))
    return got[0]


# ---------------------------------------------------------------- (a) stats socket

class StatsCommandsTest(harness.TcplbTestCase):
    """Every stats socket command, what it does and what bad input gets."""

    def start_rr(self, n=3, weights=None, **pool_keys):
        self.backends = [self.backend(harness.HttpBackend, name)
                         for name in 'abc'[:n]]
        cfg = self.config()
        self.port = cfg.listener('web', pool='p', mode='http')
        servers = []
        for i, b in enumerate(self.backends):
            opt = 'weight=%d' % weights[i] if weights else ''
            servers.append((b.name, b, opt))
        cfg.pool('p', servers, **pool_keys)
        self.lb = self.tcplb(cfg)
        return self.lb

    # -- help, show info, show stat

    def test_help_names_every_command(self):
        lb = self.start_rr()
        text = one_answer(lb, 'help')
        for cmd in ('help', 'show info', 'show stat', 'show stat json',
                    'show clients', 'disable server', 'drain server',
                    'enable server', 'set weight', 'clear counters', 'which',
                    'show events'):
            self.assertIn(cmd, text)

    def test_show_stat_csv_agrees_with_json(self):
        lb = self.start_rr()
        for _ in range(4):
            served_by(self.port)
        js = self.settled_stats(lb)
        lines = one_answer(lb, 'show stat').split('\n')
        self.assertEqual(lines[0], harness.STAT_CSV_HEADER)
        self.assertEqual(len(lines), 4, lines)
        for line, srv in zip(lines[1:], js['pools'][0]['servers']):
            f = line.split(',')
            self.assertEqual(f[:10], ['p', srv['name'], srv['addr'], srv['state'],
                                      str(srv['weight']), str(srv['active']),
                                      str(srv['total']), str(srv['failed']),
                                      str(srv['bytes_in']), str(srv['bytes_out'])])

    # -- set weight

    def test_set_weight_changes_the_round_robin_split(self):
        lb = self.start_rr()
        self.assertEqual(one_answer(lb, 'set weight p/a 3'), 'p/a weight 3')
        self.assertEqual(harness.find_server(lb.stats_json(), 'p', 'a')['weight'], 3)
        names = [served_by(self.port) for _ in range(10)]
        # weights 3,1,1: any 10 picks are two whole rounds of a a b a c
        self.assertEqual({n: names.count(n) for n in 'abc'},
                         {'a': 6, 'b': 2, 'c': 2}, names)

    def test_set_weight_0_gives_the_server_no_new_connections(self):
        lb = self.start_rr()
        self.assertEqual(one_answer(lb, 'set weight p/b 0'), 'p/b weight 0')
        names = [served_by(self.port) for _ in range(8)]
        self.assertNotIn('b', names)
        self.assertEqual(sorted(set(names)), ['a', 'c'])
        js = self.settled_stats(lb)
        self.assertEqual(totals(js, 'p'), {'a': 4, 'b': 0, 'c': 4})
        self.assertEqual(harness.find_server(js, 'p', 'b')['weight'], 0)
        self.assertEqual(harness.find_server(js, 'p', 'b')['state'], 'up')
        # and back
        self.assertEqual(one_answer(lb, 'set weight p/b 1'), 'p/b weight 1')
        names = [served_by(self.port) for _ in range(3)]
        self.assertEqual(sorted(names), ['a', 'b', 'c'])

    def test_set_weight_bad_input_is_an_error_and_changes_nothing(self):
        lb = self.start_rr()
        for cmd in ('set weight p/a 257', 'set weight p/a 1000000000000',
                    'set weight p/a x', 'set weight p/a -1', 'set weight p/a 1.5',
                    'set weight p/a +2', 'set weight p/zz 1', 'set weight zz/a 1',
                    'set weight pa 1', 'set weight /a 1', 'set weight p/ 1',
                    'set weight p/a', 'set weight', 'set weight p/a 1 2'):
            with self.subTest(cmd=cmd):
                self.assertTrue(one_answer(lb, cmd).startswith('error:'), cmd)
        js = lb.stats_json()
        self.assertEqual([s['weight'] for s in js['pools'][0]['servers']], [1, 1, 1])
        self.assertEqual(one_answer(lb, 'set weight p/a 256'), 'p/a weight 256')
        self.assertEqual(one_answer(lb, 'set weight p/a 0'), 'p/a weight 0')

    # -- disable / drain / enable

    def test_disable_drain_enable_answer_the_new_state(self):
        lb = self.start_rr()
        self.assertEqual(one_answer(lb, 'disable server p/a'), 'p/a maint')
        self.assertEqual(one_answer(lb, 'drain server p/b'), 'p/b drain')
        js = lb.stats_json()
        self.assertEqual([s['state'] for s in js['pools'][0]['servers']],
                         ['maint', 'drain', 'up'])
        self.assertEqual({served_by(self.port) for _ in range(4)}, {'c'})
        self.assertEqual(one_answer(lb, 'enable server p/a'), 'p/a up')
        self.assertEqual(one_answer(lb, 'enable server p/b'), 'p/b up')
        self.assertEqual(sorted(served_by(self.port) for _ in range(3)),
                         ['a', 'b', 'c'])

    def test_admin_commands_with_bad_server_are_errors(self):
        lb = self.start_rr()
        for verb in ('disable', 'drain', 'enable'):
            for ref in ('p/zz', 'zz/a', 'a', 'p/', '/a', 'p/a/b'):
                with self.subTest(cmd='%s server %s' % (verb, ref)):
                    self.assertTrue(one_answer(lb, '%s server %s' % (verb, ref))
                                    .startswith('error:'))
            self.assertTrue(one_answer(lb, '%s server' % verb).startswith('error:'))
            self.assertTrue(one_answer(lb, '%s p/a' % verb).startswith('error:'))
        js = lb.stats_json()
        self.assertEqual([s['state'] for s in js['pools'][0]['servers']],
                         ['up', 'up', 'up'])

    # -- clear counters

    def test_clear_counters_zeroes_totals_and_keeps_active(self):
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        cfg = self.config()
        port = cfg.listener('web', pool='p', mode='http')
        none_port = cfg.listener('nothing', pool='empty', mode='tcp')
        cfg.pool('p', [('a', a), ('b', b), ('d', '%s:%d' % (harness.HOST,
                                                            harness.dead_port()))])
        cfg.pool('empty', [])
        lb = self.tcplb(cfg)
        for i in range(6):
            served_by(port, source=harness.client_ip(i % 2))
        self.assertEqual(harness.recv_until_eof(self.connect(none_port)), b'')
        js = self.settled_stats(lb)
        self.assertEqual(sum(totals(js, 'p').values()), 6)
        self.assertEqual(harness.find_server(js, 'p', 'd')['failed'], 2)
        self.assertEqual(harness.find_listener(js, 'nothing')['rejected'], 1)

        # one connection stays open, its request unfinished
        held = self.connect(port, source=harness.client_ip(5))
        held.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')
        harness.wait_until(lambda: harness.find_listener(lb.stats_json(), 'web')
                           ['active'] == 1 and sum(
                               s['active'] for s in lb.stats_json()['pools'][0]
                               ['servers']) == 1, 3)
        self.assertEqual(one_answer(lb, 'clear counters'), 'counters cleared')

        js = lb.stats_json()
        for srv in js['pools'][0]['servers']:
            for key in ('total', 'failed', 'bytes_in', 'bytes_out'):
                self.assertEqual(srv[key], 0, '%s %s' % (srv['name'], key))
        self.assertEqual(sum(s['active'] for s in js['pools'][0]['servers']), 1)
        for lst in js['listeners']:
            self.assertEqual((lst['total'], lst['rejected']), (0, 0), lst)
        self.assertEqual(harness.find_listener(js, 'web')['active'], 1)
        info = dict(l.split(': ', 1) for l in one_answer(lb, 'show info').split('\n'))
        self.assertEqual((info['total'], info['rejected'], info['active']),
                         ('0', '0', '1'))
        clients = one_answer(lb, 'show clients p').split('\n')
        self.assertTrue(clients and clients != [''], clients)
        for line in clients:
            ip, total, active, server = line.split(' ')
            self.assertEqual(total, '0', line)
            self.assertEqual(active, '1' if ip == harness.client_ip(5) else '0', line)

        # the held connection finishes: nothing goes below zero
        held.sendall(b'Connection: close\r\n\r\n')
        r = harness.read_http_response(held, expect_eof=True)
        self.assertEqual(r.status, 200)
        held.close()
        js = self.settled_stats(lb)
        self.assertEqual(sum(totals(js, 'p').values()), 0)
        self.assertEqual(harness.find_listener(js, 'web')['active'], 0)
        self.assertGreater(sum(s['bytes_out'] for s in js['pools'][0]['servers']), 0)
        self.assertTrue(one_answer(lb, 'clear').startswith('error:'))
        self.assertTrue(one_answer(lb, 'clear counters now').startswith('error:'))

    # -- which

    def test_which_answers_persist_after_a_connection_with_persist_source(self):
        lb = self.start_rr(persist='source')
        ip = harness.client_ip(40)
        first = one_answer(lb, 'which p %s' % ip)
        self.assertRegex(first, r'^[abc] schedule$')
        got = served_by(self.port, source=ip)
        self.assertEqual(one_answer(lb, 'which p %s' % ip), '%s persist' % got)
        for i in range(4):                  # other clients move round robin on
            served_by(self.port, source=harness.client_ip(i))
        self.assertEqual(one_answer(lb, 'which p %s' % ip), '%s persist' % got)
        self.assertEqual(served_by(self.port, source=ip), got)
        other = one_answer(lb, 'which p %s' % harness.client_ip(41))
        self.assertRegex(other, r'^[abc] schedule$')

    def test_which_says_why_a_remembered_client_moves(self):
        lb = self.start_rr(persist='source')
        ip = harness.client_ip(42)
        got = served_by(self.port, source=ip)
        self.assertEqual(one_answer(lb, 'which p %s' % ip), '%s persist' % got)
        self.assertEqual(one_answer(lb, 'disable server p/%s' % got), 'p/%s maint' % got)
        ans = one_answer(lb, 'which p %s' % ip)
        self.assertRegex(ans, r'^[abc] schedule \(remembered on %s, which is maint\)$' % got)
        self.assertNotEqual(ans.split()[0], got)
        one_answer(lb, 'enable server p/%s' % got)
        self.assertEqual(one_answer(lb, 'which p %s' % ip), '%s persist' % got)

    def test_which_answers_hash_with_scheduler_source(self):
        lb = self.start_rr(scheduler='source')
        for i in range(10, 16):
            ip = harness.client_ip(i)
            ans = one_answer(lb, 'which p %s' % ip)
            m = re.match(r'^([abc]) hash$', ans)
            self.assertTrue(m, ans)
            self.assertEqual(one_answer(lb, 'which p %s' % ip), ans)
            self.assertEqual(served_by(self.port, source=ip), m.group(1), ip)

    def test_which_answers_spill_when_the_ips_server_is_over_balance_factor(self):
        es = [self.backend(harness.EchoBackend, n) for n in 'abc']
        cfg = self.config()
        port = cfg.listener('relay', pool='p', mode='tcp')
        cfg.pool('p', [(e.name, e) for e in es], scheduler='source',
                 balance_factor=125)
        lb = self.tcplb(cfg)
        ip = harness.client_ip(50)
        ans = one_answer(lb, 'which p %s' % ip)
        m = re.match(r'^([abc]) hash$', ans)
        self.assertTrue(m, ans)
        own = m.group(1)
        held = self.connect(port, source=ip)
        self.assertTrue(harness.wait_until(
            lambda: harness.find_server(lb.stats_json(), 'p', own)['active'] == 1, 3))
        # 1 active of 1 in all, 3 servers: the cap is ceil(1.25*2/3) = 1
        ans = one_answer(lb, 'which p %s' % ip)
        m = re.match(r'^([abc]) spill$', ans)
        self.assertTrue(m, ans)
        spill = m.group(1)
        self.assertNotEqual(spill, own)
        second = self.connect(port, source=ip)      # the real pick agrees
        self.assertTrue(harness.wait_until(
            lambda: harness.find_server(lb.stats_json(), 'p', spill)['active'] == 1, 3),
            lb.stats_json())
        held.close()
        second.close()
        self.settled_stats(lb)
        self.assertEqual(one_answer(lb, 'which p %s' % ip), '%s hash' % own)

    def test_which_answers_schedule_and_does_not_move_round_robin(self):
        lb = self.start_rr()
        ans = [one_answer(lb, 'which p %s' % harness.client_ip(i % 3))
               for i in range(10)]
        self.assertEqual(len(set(ans)), 1, ans)
        m = re.match(r'^([abc]) schedule$', ans[0])
        self.assertTrue(m, ans[0])
        names = [served_by(self.port) for _ in range(3)]
        self.assertEqual(names[0], m.group(1), 'which named %s, got %s'
                         % (m.group(1), names))
        js = self.settled_stats(lb)
        self.assertEqual(totals(js, 'p'), {'a': 1, 'b': 1, 'c': 1})
        # which tells the next pick, again
        nxt = one_answer(lb, 'which p 127.0.0.1').split(' ')[0]
        self.assertEqual(served_by(self.port), nxt)

    def test_which_answers_none_without_an_available_server(self):
        a = self.backend(harness.HttpBackend, 'a')
        cfg = self.config()
        cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', a)])
        cfg.pool('empty', [])
        lb = self.tcplb(cfg)
        self.assertEqual(one_answer(lb, 'which empty 127.0.0.1'), 'none')
        self.assertEqual(one_answer(lb, 'which p 127.0.0.1'), 'a schedule')
        one_answer(lb, 'disable server p/a')
        self.assertEqual(one_answer(lb, 'which p 127.0.0.1'), 'none')
        self.assertEqual(one_answer(lb, 'which p ::1'), 'none')

    def test_which_with_bad_pool_or_ip_is_an_error(self):
        lb = self.start_rr()
        for cmd in ('which nopool 127.0.0.1', 'which p 300.1.1.1', 'which p 1.2.3',
                    'which p hello', 'which p 127.0.0.1:80', 'which p ::zz',
                    'which p', 'which', 'which p 127.0.0.1 extra'):
            with self.subTest(cmd=cmd):
                self.assertTrue(one_answer(lb, cmd).startswith('error:'), cmd)
        self.assertRegex(one_answer(lb, 'which p ::1'), r'^[abc] schedule$')
        self.assertRegex(one_answer(lb, 'which p ::ffff:10.0.0.1'), r'^[abc] schedule$')

    # -- show events

    def test_show_events_lists_state_changes_with_reason_newest_last(self):
        lb = self.start_rr()
        self.assertEqual(split_answers(lb.stats('show events')), [[]])
        one_answer(lb, 'disable server p/a')
        one_answer(lb, 'enable server p/a')
        one_answer(lb, 'drain server p/b')
        lines = one_answer(lb, 'show events').split('\n')
        self.assertEqual(len(lines), 3, lines)
        ev = [EVENT_RE.match(l) for l in lines]
        self.assertTrue(all(ev), lines)
        self.assertEqual([(e['pool'], e['server'], e['old'], e['new']) for e in ev],
                         [('p', 'a', 'up', 'maint'), ('p', 'a', 'maint', 'up'),
                          ('p', 'b', 'up', 'drain')])
        self.assertIn('disable', ev[0]['reason'])
        self.assertIn('enable', ev[1]['reason'])
        self.assertIn('drain', ev[2]['reason'])
        for e in ev:
            self.assertEqual((e['failed'], e['retried'], e['lost']), ('0', '0', '0'))
        self.assertEqual([e['ts'] for e in ev], sorted(e['ts'] for e in ev))
        # N bounds the answer to the newest N
        self.assertEqual(one_answer(lb, 'show events 1').split('\n'), lines[-1:])
        self.assertEqual(one_answer(lb, 'show events 2').split('\n'), lines[-2:])
        self.assertEqual(one_answer(lb, 'show events 256').split('\n'), lines)

    def test_show_events_keeps_the_newest_256(self):
        lb = self.start_rr()
        cmds = ''.join('disable server p/a\nenable server p/a\n' for _ in range(140))
        self.assertEqual(len(split_answers(lb.stats_raw(cmds))), 280)
        lines = one_answer(lb, 'show events 256').split('\n')
        self.assertEqual(len(lines), 256)
        self.assertEqual(len(one_answer(lb, 'show events').split('\n')), 50)
        self.assertTrue(EVENT_RE.match(lines[-1]).group('new') == 'up', lines[-1])

    def test_show_events_with_bad_n_is_an_error(self):
        lb = self.start_rr()
        for n in ('0', '257', '-1', 'x', '1.5', '1e2', '99999999999'):
            with self.subTest(n=n):
                self.assertTrue(one_answer(lb, 'show events %s' % n)
                                .startswith('error:'))
        self.assertTrue(one_answer(lb, 'show events 1 2').startswith('error:'))

    def test_show_events_counts_what_an_outage_cost(self):
        """A server dead since start goes down by failed traffic connects
        (passive checks); its event counts the failed connects, those hidden
        by a retry (pool p) and those lost (pool q, retries = 0)."""
        a = self.backend(harness.HttpBackend, 'a')
        b = self.backend(harness.HttpBackend, 'b')
        cfg = self.config()
        port_p = cfg.listener('web', pool='p', mode='http')
        port_q = cfg.listener('web2', pool='q', mode='http')
        # the dead server is the last: its first active check is 40 s away
        for name, retries in (('p', 2), ('q', 0)):
            cfg.pool(name, [('a', a), ('b', b),
                            ('d', '%s:%d' % (harness.HOST, harness.dead_port()))],
                     retries=retries, health='tcp', health_interval='60s',
                     rise=1, fall=2)
        lb = self.tcplb(cfg)
        for port in (port_p, port_q):
            for _ in range(9):
                try:
                    harness.http_request(port)
                except (AssertionError, OSError):
                    pass
        harness.wait_server_state(lb, 'p', 'd', 'down', 3)
        harness.wait_server_state(lb, 'q', 'd', 'down', 3)
        ev = {}
        for line in one_answer(lb, 'show events').split('\n'):
            m = EVENT_RE.match(line)
            self.assertTrue(m, line)
            ev[(m['pool'], m['server'], m['old'], m['new'])] = m
        self.assertEqual(sorted(ev), [('p', 'd', 'up', 'down'), ('q', 'd', 'up', 'down')])
        p, q = ev[('p', 'd', 'up', 'down')], ev[('q', 'd', 'up', 'down')]
        self.assertEqual((p['failed'], p['retried'], p['lost']), ('2', '2', '0'))
        self.assertEqual((q['failed'], q['retried'], q['lost']), ('2', '0', '2'))
        js = self.settled_stats(lb)
        self.assertEqual(harness.find_server(js, 'p', 'd')['failed'], 2)
        self.assertEqual(harness.find_listener(js, 'web2')['rejected'], 2)

    # -- the protocol

    def test_a_2000_byte_line_is_refused_and_the_next_command_answered(self):
        lb = self.start_rr()
        parts = split_answers(stats_bytes(lb, b'x' * 2000 + b'\nshow info\n'))
        self.assertEqual(len(parts), 2, parts)
        self.assertEqual(parts[0], ['error: line longer than 1023 bytes refused'])
        self.assertTrue(parts[1][0].startswith('version: '), parts[1])
        # the same line arriving in pieces, then a command in the same write
        parts = split_answers(stats_bytes(
            lb, [b'show ' * 200, b'y' * 1000, b'\nwhich p 127.0.0.1\n'], pause=0.05))
        self.assertEqual(len(parts), 2, parts)
        self.assertEqual(parts[0], ['error: line longer than 1023 bytes refused'])
        self.assertRegex(parts[1][0], r'^[abc] schedule$')
        self.assertTrue(lb.running())

    def test_line_length_limit_is_1023_bytes(self):
        lb = self.start_rr()
        for n, refused in ((1023, False), (1024, True)):
            with self.subTest(n=n):
                parts = split_answers(stats_bytes(lb, b'z' * n + b'\n'))
                self.assertEqual(len(parts), 1, parts)
                self.assertTrue(parts[0][0].startswith('error:'), parts)
                self.assertEqual('longer than' in parts[0][0], refused, parts)
        # a legal command padded with spaces to 1023 bytes still works
        parts = split_answers(stats_bytes(lb, b'show info' + b' ' * 1014 + b'\n'))
        self.assertTrue(parts[0][0].startswith('version: '), parts)
        # an overlong last line ended by EOF instead of a newline
        parts = split_answers(stats_bytes(lb, b'help\n' + b'q' * 3000))
        self.assertEqual(len(parts), 2, parts)
        self.assertEqual(parts[1], ['error: line longer than 1023 bytes refused'])

    def test_binary_garbage_answers_error_and_harms_nothing(self):
        lb = self.start_rr()
        rnd = random.Random(5)
        junk = bytes(rnd.randrange(256) for _ in range(20000))
        text = stats_bytes(lb, junk + b'\nshow info\n')
        parts = split_answers(text)
        self.assertTrue(parts[-1] and parts[-1][0].startswith('version: '), parts[-1])
        for p in parts[:-1]:
            self.assertTrue(p == [] or p[0].startswith('error:'), p)
        self.assertTrue(lb.running())
        js = lb.stats_json()
        self.assertEqual([s['state'] for s in js['pools'][0]['servers']],
                         ['up', 'up', 'up'])
        self.assertEqual(one_answer(lb, 'show events'), '')

    def test_a_line_of_nul_and_control_bytes_answers_error(self):
        lb = self.start_rr()
        for junk in (b'\xff\xfe\xfd\x80', b'\x01\x02\x03', b'show\x00info',
                     b'\x00\x01\x02garbage', b'\x00'):
            with self.subTest(junk=junk):
                parts = split_answers(stats_bytes(lb, junk + b'\nshow stat\n'))
                self.assertEqual(len(parts), 2, '%r -> %r' % (junk, parts))
                self.assertTrue(parts[0][0].startswith('error:'), parts)
                self.assertEqual(parts[1][0], harness.STAT_CSV_HEADER)
        self.assertTrue(lb.running())

    def test_five_commands_in_one_write_separated_by_semicolons(self):
        lb = self.start_rr()
        text = stats_bytes(lb, b'help;show info;show stat;which p 127.0.0.1;'
                               b'set weight p/c 2\n')
        parts = split_answers(text)
        self.assertEqual(len(parts), 5, parts)
        self.assertIn('show events', '\n'.join(parts[0]))
        self.assertTrue(parts[1][0].startswith('version: '))
        self.assertEqual(parts[2][0], harness.STAT_CSV_HEADER)
        self.assertRegex(parts[3][0], r'^[abc] schedule$')
        self.assertEqual(parts[4], ['p/c weight 2'])
        # empty commands get no answer; newlines and ';' mix
        parts = split_answers(stats_bytes(lb, b';;\n;show info;;\n\nwhich p ::1;'))
        self.assertEqual(len(parts), 2, parts)


# ---------------------------------------------------------------- (b) access log

class AccessLogTest(harness.TcplbTestCase):
    """The access log line of each `term`: every field of docs/reference.md: Access log
    in order, and the values that are known."""

    def start(self, servers, mode='tcp', cfg_keys=None, **pool_keys):
        cfg = self.config(**(cfg_keys or {}))
        self.port = cfg.listener('front', pool='p', mode=mode)
        cfg.pool('p', servers, **pool_keys)
        self.lb = self.tcplb(cfg)
        return self.lb

    def line_for(self, addr, term, lb=None):
        """The one access log line of the client connection from addr,
        checked against the format, term, client, listener, pool and ts."""
        lb = lb or self.lb
        lines = access_lines_for(lb, addr)
        self.assertEqual(len(lines), 1, 'client %s: %r\n%s'
                         % (addr, lines, '\n'.join(read_lines(lb.log_path))))
        m = LOG_RE.match(lines[0])
        self.assertTrue(m, 'not the documented access log format: %r' % lines[0])
        self.assertEqual(m['term'], term, lines[0])
        self.assertEqual(m['client'], '%s:%d' % addr)
        self.assertEqual((m['listener'], m['pool']), ('front', 'p'))
        ts = time.strptime(m['ts'][:19], '%Y-%m-%dT%H:%M:%S')
        self.assertLess(abs(time.mktime(ts) - time.mktime(time.gmtime())), 120,
                        m['ts'])
        return m

    def assert_reached(self, m, server, bytes_in, bytes_out):
        self.assertEqual(m['server'], server)
        self.assertNotEqual(m['connect_ms'], '-')
        self.assertLess(float(m['connect_ms']), 1000)
        self.assertEqual((int(m['bytes_in']), int(m['bytes_out'])),
                         (bytes_in, bytes_out))

    def assert_not_reached(self, m):
        self.assertEqual((m['connect_ms'], m['bytes_in'], m['bytes_out']),
                         ('-', '0', '0'))

    def test_term_ok_with_exact_bytes_each_way(self):
        sink = self.backend(harness.SinkThenSendBackend, 'sink', payload=b'P' * 5000)
        self.start([('sink', sink)])
        s = self.connect(self.port, source='127.0.0.9')
        sent = bytes(range(256)) * 4 + b'tail' * 52       # 1232 bytes
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.recv_until_eof(s), sink.expected_reply(sent))
        addr = s.getsockname()
        self.assertEqual(addr[0], '127.0.0.9')   # logged as the client bound it
        m = self.line_for(addr, 'ok')
        self.assert_reached(m, 'sink', 1232, 5032)

    def test_term_ok_in_http_mode_counts_request_and_answer_bytes(self):
        web = self.backend(harness.HttpBackend, 'web')
        self.start([('web', web)], mode='http')
        s = self.connect(self.port)
        req = b'GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
        s.sendall(req)
        answer = harness.recv_until_eof(s)
        self.assertTrue(answer.startswith(b'HTTP/1.1 200'), answer)
        addr = s.getsockname()
        s.close()               # the connection ends when both sides are done
        m = self.line_for(addr, 'ok')
        self.assert_reached(m, 'web', len(req), len(answer))

    def test_term_client_reset(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        self.start([('echo', echo)])
        s = self.connect(self.port)
        s.sendall(b'r' * 100)
        self.assertEqual(harness.recv_exact(s, 100), b'r' * 100)
        addr = s.getsockname()
        rst_close(s)
        m = self.line_for(addr, 'client_reset')
        self.assert_reached(m, 'echo', 100, 100)

    def test_term_server_reset(self):
        rst = self.backend(harness.ResetBeforeReplyBackend, 'rst')
        self.start([('rst', rst)])
        s = self.connect(self.port)
        req = b'GET / HTTP/1.1\r\n\r\n'
        s.sendall(req)
        try:
            self.assertEqual(harness.recv_until_eof(s), b'')
        except ConnectionResetError:
            pass
        m = self.line_for(s.getsockname(), 'server_reset')
        self.assert_reached(m, 'rst', len(req), 0)

    def test_term_no_server(self):
        self.start([])
        s = self.connect(self.port)
        self.assertEqual(harness.recv_until_eof(s), b'')
        m = self.line_for(s.getsockname(), 'no_server')
        self.assertEqual(m['server'], '-')
        self.assert_not_reached(m)

    def test_term_no_server_when_every_server_is_in_maint(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        self.start([('echo', echo)])
        one_answer(self.lb, 'disable server p/echo')
        s = self.connect(self.port)
        self.assertEqual(harness.recv_until_eof(s), b'')
        m = self.line_for(s.getsockname(), 'no_server')
        self.assertEqual(m['server'], '-')
        self.assert_not_reached(m)

    def test_term_connect_fail_when_every_server_is_dead(self):
        dead = [('d%d' % i, '%s:%d' % (harness.HOST, harness.dead_port()))
                for i in range(2)]
        self.start(dead, retries=1)
        s = self.connect(self.port)
        self.assertEqual(harness.recv_until_eof(s), b'')
        m = self.line_for(s.getsockname(), 'connect_fail')
        # docs/reference.md: Access log: `server=-` when none was reached
        self.assertEqual(m['server'], '-')
        self.assert_not_reached(m)
        js = self.settled_stats(self.lb)
        self.assertEqual(sum(s['failed'] for s in js['pools'][0]['servers']), 2)

    def test_term_queue_timeout(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        self.start([('echo', echo, 'maxconn=1')], queue_timeout='300ms')
        first = self.connect(self.port)
        first.sendall(b'1')
        self.assertEqual(harness.recv_exact(first, 1), b'1')
        s = self.connect(self.port)
        t0 = time.monotonic()
        self.assertEqual(harness.recv_until_eof(s), b'')
        self.assertGreater(time.monotonic() - t0, 0.2)
        m = self.line_for(s.getsockname(), 'queue_timeout')
        self.assertEqual(m['server'], '-')
        self.assert_not_reached(m)
        self.assertGreaterEqual(float(m['duration_ms']), 290)

    def test_term_server_timeout(self):
        silent = self.backend(harness.SilentBackend, 'silent')
        self.start([('silent', silent)], server_timeout='300ms')
        s = self.connect(self.port)
        s.sendall(b'0123456789')
        self.assertEqual(harness.recv_until_eof(s), b'')
        m = self.line_for(s.getsockname(), 'server_timeout')
        self.assert_reached(m, 'silent', 10, 0)
        self.assertGreaterEqual(float(m['duration_ms']), 290)
        self.assertLess(float(m['duration_ms']), 5000)

    def test_term_idle_timeout(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        self.start([('echo', echo)], idle_timeout='300ms')
        s = self.connect(self.port)
        s.sendall(b'hello')
        self.assertEqual(harness.recv_exact(s, 5), b'hello')
        self.assertEqual(harness.recv_until_eof(s), b'')
        m = self.line_for(s.getsockname(), 'idle_timeout')
        self.assert_reached(m, 'echo', 5, 5)
        self.assertGreaterEqual(float(m['duration_ms']), 290)

    def test_term_shutdown(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        self.start([('echo', echo)], cfg_keys={'shutdown_timeout': '500ms'})
        s = self.connect(self.port)
        s.sendall(b'1234567')
        self.assertEqual(harness.recv_exact(s, 7), b'1234567')
        t0 = time.monotonic()
        self.lb.signal(signal.SIGTERM)
        self.assertEqual(self.lb.wait(10), 0, self.lb.log_tail())
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 0.4)
        self.assertLess(elapsed, 5)
        try:
            self.assertEqual(harness.recv_until_eof(s), b'')
        except ConnectionResetError:
            pass
        m = self.line_for(s.getsockname(), 'shutdown')
        self.assert_reached(m, 'echo', 7, 7)

    # -- the file

    def test_sigusr1_reopens_the_log_file(self):
        web = self.backend(harness.HttpBackend, 'web')
        lb = self.start([('web', web)], mode='http')
        rotated = lb.log_path + '.1'

        def request():
            s = self.connect(self.port)
            s.sendall(b'GET / HTTP/1.1\r\nConnection: close\r\n\r\n')
            harness.recv_until_eof(s)
            addr = s.getsockname()
            s.close()
            return addr
        p1 = request()
        self.assertTrue(access_lines_for(lb, p1))
        os.rename(lb.log_path, rotated)
        p2 = request()          # still written to the renamed file
        self.assertTrue(access_lines_for(lb, p2, path=rotated))
        lb.signal(signal.SIGUSR1)
        self.assertTrue(harness.wait_until(lambda: os.path.exists(lb.log_path), 3),
                        'SIGUSR1 did not create a new %s' % lb.log_path)
        p3 = request()
        self.assertEqual(len(access_lines_for(lb, p3)), 1)
        old = read_lines(rotated)
        self.assertEqual(len(old), 2, old)
        self.assertEqual(len(read_lines(lb.log_path)), 1)
        self.assertTrue(lb.running())
        self.assertEqual(lb.stop(), 0)

    def test_log_off_writes_no_line(self):
        web = self.backend(harness.HttpBackend, 'web')
        cfg = self.config()
        cfg.global_items = [(k, 'off' if k == 'log' else v)
                            for k, v in cfg.global_items]
        port = cfg.listener('front', pool='p', mode='http')
        cfg.pool('p', [('web', web)])
        lb = self.tcplb(cfg)
        for _ in range(5):
            served_by(port)
        self.settled_stats(lb, lambda js: js['listeners'][0]['total'] == 5)
        time.sleep(0.3)         # more than the writer's 100 ms
        self.assertEqual(lb.stop(), 0)
        self.assertFalse(os.path.exists(cfg.log_path))
        with open(lb.out_path, 'rb') as f:
            out = f.read().decode('utf-8', 'replace')
        self.assertNotIn('term=', out)
        self.assertNotIn('client=', out)

    def test_log_stderr_writes_the_lines_to_stderr(self):
        web = self.backend(harness.HttpBackend, 'web')
        cfg = self.config()
        cfg.global_items = [(k, 'stderr' if k == 'log' else v)
                            for k, v in cfg.global_items]
        port = cfg.listener('front', pool='p', mode='http')
        cfg.pool('p', [('web', web)])
        lb = self.tcplb(cfg)
        s = self.connect(port)
        s.sendall(b'GET / HTTP/1.1\r\nConnection: close\r\n\r\n')
        harness.recv_until_eof(s)
        addr = s.getsockname()
        s.close()
        lines = access_lines_for(lb, addr, path=lb.out_path)
        self.assertEqual(len(lines), 1)
        self.assertTrue(LOG_RE.match(lines[0]), lines[0])
        self.assertFalse(os.path.exists(cfg.log_path))


# ---------------------------------------------------------------- (c) stats_http

DOCUMENTED_FAMILIES = {
    'tcplb_server_up': 'gauge',
    'tcplb_server_connections_total': 'counter',
    'tcplb_server_active_connections': 'gauge',
    'tcplb_server_connect_failures_total': 'counter',
    'tcplb_server_connect_retried_total': 'counter',
    'tcplb_server_connect_lost_total': 'counter',
    'tcplb_server_bytes_total': 'counter',
    'tcplb_listener_connections_total': 'counter',
    'tcplb_listener_rejected_total': 'counter',
    'tcplb_server_connect_seconds': 'histogram',
    'tcplb_server_session_seconds': 'histogram',
}


class PromParserTest(unittest.TestCase):
    """The parser below is strict: malformed text is refused."""

    GOOD = ('# HELP x_total Things.\n# TYPE x_total counter\n'
            'x_total{a="1",b="q\\"\\\\\\n"} 3\nx_total{a="2",} 4 1700000000\n'
            '# HELP h Latency.\n# TYPE h histogram\n'
            'h_bucket{le="0.1"} 1\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 2\n'
            'h_sum 0.3\nh_count 2\n')

    def test_accepts_valid_text(self):
        fams = parse_prometheus(self.GOOD)
        self.assertEqual(fams['x_total']['type'], 'counter')
        self.assertEqual(prom_value(fams, 'x_total', a='1', b='q"\\\n'), 3)
        self.assertEqual(prom_value(fams, 'h', 'h_count'), 2)

    def test_refuses_malformed_text(self):
        bad = {
            'no TYPE': self.GOOD.replace('# TYPE x_total counter\n', ''),
            'no HELP': self.GOOD.replace('# HELP h Latency.\n', ''),
            'two TYPE': self.GOOD.replace('# TYPE h histogram\n',
                                          '# TYPE h histogram\n# TYPE h histogram\n'),
            'TYPE late': self.GOOD.replace('# TYPE x_total counter\n', '') +
            '# TYPE x_total counter\n',
            'bad type': self.GOOD.replace('histogram', 'summary'),
            'not cumulative': self.GOOD.replace('h_bucket{le="1"} 2', 'h_bucket{le="1"} 0'),
            'inf != count': self.GOOD.replace('h_count 2', 'h_count 3'),
            'no +Inf': self.GOOD.replace('h_bucket{le="+Inf"} 2\n', ''),
            'label syntax': self.GOOD.replace('{a="2",}', '{a=2}'),
            'bad escape': self.GOOD.replace('q\\"', 'q\\t'),
            'bad value': self.GOOD.replace('} 3\n', '} three\n'),
            'negative counter': self.GOOD.replace('} 3\n', '} -3\n'),
            'duplicate': self.GOOD.replace('a="2",', 'a="1",b="q\\"\\\\\\n"'),
            'split family': self.GOOD + 'x_total{a="9"} 1\n',
            'no newline': self.GOOD[:-1],
        }
        for what, text in bad.items():
            with self.subTest(what=what):
                self.assertRaises(PromError, parse_prometheus, text)


class StatsHttpTest(harness.TcplbTestCase):
    """/metrics, /stats.json, / and the HTTP errors."""

    def setUp(self):
        super().setUp()
        self.a = self.backend(harness.HttpBackend, 'a')
        self.b = self.backend(harness.HttpBackend, 'b')
        self.http_port = harness.free_port()
        cfg = self.config(stats_http='%s:%d' % (harness.HOST, self.http_port))
        self.port = cfg.listener('web', pool='p', mode='http')
        self.none_port = cfg.listener('nothing', pool='empty', mode='tcp')
        cfg.pool('p', [('a', self.a, 'weight=2'), ('b', self.b),
                       ('d', '%s:%d' % (harness.HOST, harness.dead_port()))])
        cfg.pool('empty', [])
        self.lb = self.tcplb(cfg)
        harness.wait_until(lambda: harness.is_listening(self.http_port), 3)

    def traffic(self, n=12, rejected=3):
        for i in range(n):
            served_by(self.port, source=harness.client_ip(i % 4))
        for _ in range(rejected):
            self.assertEqual(harness.recv_until_eof(self.connect(self.none_port)), b'')
        return self.settled_stats(
            self.lb, lambda js: harness.find_listener(js, 'web')['total'] == n and
            harness.find_listener(js, 'nothing')['total'] == rejected)

    def metrics(self):
        status, headers, body = http_get(self.http_port, '/metrics')
        self.assertEqual(status, 200)
        self.assertEqual(headers['content-type'].split(';')[0], 'text/plain')
        self.assertIn('version=0.0.4', headers['content-type'])
        self.assertEqual(int(headers['content-length']), len(body))
        return parse_prometheus(body.decode('utf-8'))

    def test_metrics_parse_with_help_type_and_cumulative_buckets(self):
        self.traffic()
        fams = self.metrics()        # parse_prometheus does the format checks
        for name, typ in DOCUMENTED_FAMILIES.items():
            self.assertIn(name, fams)
            self.assertEqual(fams[name]['type'], typ, name)
            self.assertTrue(fams[name]['help'], name)
        self.assertEqual(prom_value(fams, 'tcplb_up'), 1)
        for name, fam in fams.items():
            if name.startswith('tcplb_server_'):
                for n, labels, _ in fam['samples']:
                    extra = set(labels) - {'pool', 'server'}
                    self.assertEqual((labels.get('pool') is not None,
                                      labels.get('server') is not None), (True, True),
                                     (n, labels))
                    self.assertLessEqual(extra, {'direction', 'state', 'le', 'class'}, (n, labels))
            if name.startswith('tcplb_listener_'):
                for n, labels, _ in fam['samples']:
                    self.assertIn('listener', labels, (n, labels))

    def test_metrics_counters_match_show_stat_json(self):
        js = self.traffic()
        fams = self.metrics()
        servers = 0
        for pool in js['pools']:
            for srv in pool['servers']:
                servers += 1
                lab = {'pool': pool['name'], 'server': srv['name']}
                with self.subTest(**lab):
                    self.assertEqual(prom_value(
                        fams, 'tcplb_server_connections_total', **lab), srv['total'])
                    self.assertEqual(prom_value(
                        fams, 'tcplb_server_connect_failures_total', **lab),
                        srv['failed'])
                    self.assertEqual(prom_value(
                        fams, 'tcplb_server_active_connections', **lab), srv['active'])
                    self.assertEqual(prom_value(
                        fams, 'tcplb_server_bytes_total', direction='in', **lab),
                        srv['bytes_in'])
                    self.assertEqual(prom_value(
                        fams, 'tcplb_server_bytes_total', direction='out', **lab),
                        srv['bytes_out'])
                    self.assertEqual(prom_value(fams, 'tcplb_server_weight', **lab),
                                     srv['weight'])
                    self.assertEqual(prom_value(
                        fams, 'tcplb_server_connect_retried_total', **lab),
                        srv['retried'])
                    self.assertEqual(prom_value(
                        fams, 'tcplb_server_connect_lost_total', **lab), srv['lost'])
                    self.assertEqual(prom_value(fams, 'tcplb_server_up', **lab),
                                     1 if srv['state'] == 'up' else 0)
                    for st in ('up', 'down', 'drain', 'maint'):
                        self.assertEqual(prom_value(fams, 'tcplb_server_state',
                                                    state=st, **lab),
                                         1 if srv['state'] == st else 0)
                    # every connect that succeeded was timed, every session
                    # that reached the server has ended
                    for h in ('tcplb_server_connect_seconds',
                              'tcplb_server_session_seconds'):
                        self.assertEqual(prom_value(fams, h, h + '_count', **lab),
                                         srv['total'], h)
        self.assertEqual(len(fams['tcplb_server_connections_total']['samples']), servers)
        for lst in js['listeners']:
            lab = {'listener': lst['name']}
            self.assertEqual(prom_value(fams, 'tcplb_listener_connections_total', **lab),
                             lst['total'])
            self.assertEqual(prom_value(fams, 'tcplb_listener_rejected_total', **lab),
                             lst['rejected'])
        # the numbers themselves: 12 requests over weights 2,1,1 (d dead)
        self.assertEqual(prom_value(fams, 'tcplb_listener_connections_total',
                                    listener='web'), 12)
        self.assertEqual(prom_value(fams, 'tcplb_listener_rejected_total',
                                    listener='nothing'), 3)
        self.assertEqual(prom_value(fams, 'tcplb_listener_rejected_total',
                                    listener='web'), 0)
        p = {'pool': 'p'}
        conn = {s: prom_value(fams, 'tcplb_server_connections_total', server=s, **p)
                for s in 'abd'}
        self.assertEqual(sum(conn.values()), 12)
        self.assertEqual(conn['d'], 0)
        self.assertGreater(prom_value(fams, 'tcplb_server_connect_failures_total',
                                      server='d', **p), 0)
        # d's failures were all hidden by a retry on a or b: retried, not lost
        d = harness.find_server(js, 'p', 'd')
        self.assertGreater(d['failed'], 0)
        self.assertEqual((d['retried'], d['lost']), (d['failed'], 0))
        self.assertEqual(prom_value(fams, 'tcplb_server_bytes_total', direction='in',
                                    server='a', **p),
                         conn['a'] * len(b'GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
                                         b'User-Agent: tcplb-it\r\nConnection: close'
                                         b'\r\n\r\n' % self.port))

    def test_metrics_after_clear_counters_are_zero(self):
        self.traffic()
        one_answer(self.lb, 'clear counters')
        fams = self.metrics()
        for name in ('tcplb_server_connections_total',
                     'tcplb_server_connect_failures_total', 'tcplb_server_bytes_total',
                     'tcplb_listener_connections_total', 'tcplb_listener_rejected_total'):
            self.assertEqual({v for _, _, v in fams[name]['samples']}, {0}, name)
        for h in ('tcplb_server_connect_seconds', 'tcplb_server_session_seconds'):
            self.assertEqual({v for _, _, v in fams[h]['samples']}, {0}, h)

    def test_stats_json_equals_show_stat_json(self):
        js = self.traffic()
        status, headers, body = http_get(self.http_port, '/stats.json')
        self.assertEqual(status, 200)
        self.assertEqual(headers['content-type'], 'application/json')
        self.assertEqual(json.loads(body), js)
        self.assertEqual(json.loads(body), self.lb.stats_json())

    def test_page_is_html_that_reads_stats_json(self):
        status, headers, body = http_get(self.http_port, '/')
        self.assertEqual(status, 200)
        self.assertTrue(headers['content-type'].startswith('text/html'))
        self.assertIn(b'stats.json', body)
        self.assertNotRegex(body, rb'<script[^>]+src=|<link[^>]+href=')

    def test_unknown_path_is_404_and_post_is_405(self):
        for path in ('/nope', '/metrics/', '/stats.jsonx', '/metricsx', '//'):
            with self.subTest(path=path):
                self.assertEqual(http_get(self.http_port, path)[0], 404)
        for method in ('POST', 'PUT', 'DELETE'):
            for path in ('/metrics', '/', '/stats.json'):
                with self.subTest(method=method, path=path):
                    status, headers, _ = http_raw(self.http_port, (
                        '%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'
                        % (method, path)).encode())
                    self.assertEqual(status, 405)
        self.assertEqual(http_raw(self.http_port, b'BLAH\r\n\r\n')[0], 400)
        self.assertEqual(http_get(self.http_port, '/metrics?x=1')[0], 200)

    def test_head_gives_headers_only(self):
        self.traffic(4, 0)
        for path, typ in (('/stats.json', 'application/json'), ('/', 'text/html'),
                          ('/metrics', 'text/plain')):
            with self.subTest(path=path):
                _, _, get_body = http_get(self.http_port, path)
                status, headers, body = http_get(self.http_port, path, method='HEAD')
                self.assertEqual(status, 200)
                self.assertEqual(body, b'')
                self.assertTrue(headers['content-type'].startswith(typ))
                if path != '/metrics':      # uptime changes between the two
                    self.assertEqual(int(headers['content-length']), len(get_body))
                else:
                    self.assertGreater(int(headers['content-length']), 1000)


if __name__ == '__main__':
    unittest.main()
