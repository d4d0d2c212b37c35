#!/usr/bin/env python3
"""segments.py — what one keep-alive request costs on the wire, per
balancer: the kernel's TCP counters (`nstat`) over a `wrk -t1 -c50` run
through tcplb and through HAProxy (mode tcp), divided by the requests, and
each process group's CPU per request (balancer, backends). Uses bench.py's
backends and targets (three nginx, tcplb workers = 2, HAProxy nbthread 2),
runs each target REPS times interleaved, prints one Markdown table.

  python3 tools/bench/segments.py [--reps 3] [--duration 4] [--targets tcplb,haproxy]

Loopback carries both directions of every connection, so a counter such
as TcpOutSegs counts the segments of all four sockets of a proxied
connection (client, two balancer sockets, backend). Not a test: nothing is
asserted."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

COUNTERS = ('TcpOutSegs', 'TcpExtDelayedACKs', 'TcpExtTCPPureAcks', 'TcpExtTCPHPAcks',
            'TcpExtTCPHPHits', 'TcpExtTCPAutoCorking', 'TcpExtTCPOrigDataSent')


def nstat():
    """{counter: value} of the kernel's counters now (nstat -az: absolute)."""
    out = subprocess.run(['nstat', '-az'], capture_output=True, text=True).stdout
    vals = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            vals[parts[0]] = int(parts[1])
    return vals


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--duration', type=int, default=4)
    p.add_argument('--targets', default='tcplb,haproxy')
    p.add_argument('--build', default=os.path.join(bench.REPO, 'build'))
    a = p.parse_args(argv)
    names = a.targets.split(',')
    args = bench.parse_args(['--no-install', '--targets', ','.join(names), '--build', a.build])
    tmp = tempfile.mkdtemp(prefix='tcplb-seg-')
    b = bench.Bench(args, tmp)
    rows = {n: [] for n in names}
    try:
        b.start_all()
        b.check_targets()
        for t in names:          # warm-up
            bench.wrk(b.targets[t].port, 1, False)
        for rep in range(a.reps):
            for t in names[rep % len(names):] + names[:rep % len(names)]:
                tgt = b.targets[t]
                lb, be = tgt.pids(), b.backend_pids()
                c0, b0, n0 = bench.cpu_us(lb), bench.cpu_us(be), nstat()
                r = bench.wrk(tgt.port, a.duration, False)
                c1, b1, n1 = bench.cpu_us(lb), bench.cpu_us(be), nstat()
                req = r['requests']
                row = {'rps': r['rps'], 'p99': r['p99'], 'lb': (c1 - c0) / req,
                       'be': (b1 - b0) / req}
                for k in COUNTERS:
                    row[k] = (n1.get(k, 0) - n0.get(k, 0)) / req
                rows[t].append(row)
    finally:
        b.procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    keys = ['rps', 'p99', 'lb', 'be'] + list(COUNTERS)
    heads = ['req/s', 'p99 ms', 'LB µs/req', 'backends µs/req'] + [k.replace('TcpExt', '')
                                                                   for k in COUNTERS]
    print('| target | ' + ' | '.join(heads) + ' |')
    print('|' + ' --- |' * (len(heads) + 1))
    for t in names:
        cells = []
        for k in keys:
            v = bench.med([r[k] for r in rows[t]])
            cells.append('%.0f' % v if k == 'rps' else '%.2f' % v)
        print('| %s | %s |' % (t, ' | '.join(cells)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
