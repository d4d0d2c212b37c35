"""acting.py -- the lab's scenarios 3 to 5 (docs/lab.md): tcplb acting on
what a request costs, on the same three nginx + php-fpm pools as scenarios
1 and 2 (tools/lab/lab.py runs them; tests/integration/test_lab.py runs a
short scenario 3).

  3  fast failure: web3's php-fpm stops and its nginx answers 502 at once;
     leastconn alone, then with outlier ejection; php-fpm comes back
  4  a server restarted under load: without and with slowstart, the
     server's share per second and the latency of its first requests
  5  the agent: web3's php-fpm has one worker; without and with
     tools/agent/fpm-agent answering tcplb's agent checks

Each function returns a result dict for lab.py's report and results.json.
Python 3 standard library only."""

import os
import subprocess
import sys
import threading
import time

import lab

AGENT = os.path.join(lab.REPO, 'tools', 'agent', 'fpm-agent')


def _later(delay, action, errors):
    """Runs action() after delay seconds in a thread; exceptions go to errors."""
    def run():
        time.sleep(delay)
        try:
            action()
        except Exception as e:          # reported by the caller
            errors.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _skewload(lb, sizes, duration, extra=(), svg=None, raw=None, skewload=None):
    return lab.run_skewload(lb.port, [
        '-d', str(duration), '-n', '100000000', '-c', str(sizes['act_concurrency']),
        '--clients', str(sizes['act_clients']), '--skew', 'uniform',
        '--seed', str(sizes['seed']), '--timeout', '10000'] + list(extra),
        svg=svg, raw=raw, binary=skewload)


def _figures(lb):
    """{server: show stat json object} of pool php."""
    import json
    js = json.loads(lb.stats('show stat json'))
    for pool in js['pools']:
        if pool['name'] == 'php':
            return {s['name']: s for s in pool['servers']}
    return {}


def _charts(runs, img_prefix):
    """Markdown lines showing each run's skewload chart."""
    out = []
    for r in runs:
        if r.get('svg'):
            out += ['![requests per server per second, %s](%s%s)'
                    % (r['label'], img_prefix, r['svg']), '']
    return out


def _errors_total(sk):
    return sum(v or 0 for v in sk['errors'].values())


# ---------------------------------------------------------------- scenario 3

FAIL_CONFIGS = (
    ('leastconn', {}),
    ('leastconn + ejection', {'outlier_consecutive': 5}),
)


def run_fail(root, out_dir, sizes, log=print, tcplb=None, skewload=None,
             configs=FAIL_CONFIGS):
    """Scenario 3: web3's php-fpm stops at stop_at s into the run and starts
    again at back_at s; leastconn with and without outlier ejection."""
    d = sizes['fail_duration']
    stop_at, back_at = sizes['fail_stop_at'], sizes['fail_back_at']
    result = {'name': 'fail', 'duration': d, 'stop_at': stop_at, 'back_at': back_at,
              'ejection': sizes['fail_ejection'], 'runs': []}
    t0 = time.monotonic()
    pools = lab.Pools(os.path.join(root, 'fail'), children=sizes['children'],
                      burn={n: sizes['page_cpu_ms'] for n in lab.POOL_NAMES},
                      wait_ms=sizes['page_wait_ms']).start()
    try:
        web3 = pools.get('web3')
        for label, keys in configs:
            log('lab: fast failure, %s, %gs ...' % (label, d))
            slug = 'fail-' + label.replace(' + ', '-').replace(' ', '-')
            keys = dict({'health': 'tcp', 'health_interval': '1s',
                         'outlier_ejection': sizes['fail_ejection']}, **keys)
            errors = []
            with lab.Balancer(os.path.join(root, 'fail'), 'tcplb-' + slug, pools.pools,
                              scheduler='leastconn', workers=sizes['tcplb_workers'],
                              binary=tcplb, pool_keys=keys) as lb:
                marks = {}

                def stop():
                    marks['stop'] = _figures(lb)
                    web3.stop_fpm()

                def back():
                    marks['back'] = _figures(lb)
                    web3.start_fpm()
                    web3.wait_fpm()
                _later(stop_at, stop, errors)
                _later(back_at, back, errors)
                svg = os.path.join(out_dir, 's3-%s.svg' % slug) if out_dir else None
                sk = _skewload(lb, sizes, d, svg=svg, skewload=skewload,
                               raw=os.path.join(root, 'fail', '%s.csv' % slug))
                end = _figures(lb)
                events = lb.events()
                explained = lb.explain()
                rc = lb.stop()
            if errors:
                raise lab.LabError('scenario 3: %s' % errors[0])
            if svg:
                lab.relabel_svg(svg, lb.port, '%s, web3\'s php-fpm stopped %gs-%gs'
                                % (label, stop_at, back_at))
            w3 = lambda f: (f.get('web3') or {})
            fail_5xx = (w3(marks['back'])['responses']['5xx'] -
                        w3(marks['stop'])['responses']['5xx'])
            fail_requests = w3(marks['back'])['requests'] - w3(marks['stop'])['requests']
            all_requests = sum(f['requests'] - marks['stop'][n]['requests']
                               for n, f in marks['back'].items())
            returned_2xx = w3(end)['responses']['2xx'] - w3(marks['back'])['responses']['2xx']
            result['runs'].append({
                'label': label, 'keys': keys, 'tcplb_exit': rc,
                'svg': os.path.basename(svg) if svg else None,
                'requests': sk['summary'].get('requests'), 'ok': sk['summary'].get('ok'),
                'errors': _errors_total(sk), 'error_kinds': sk['errors'],
                'error_pct': 100.0 * _errors_total(sk) / max(1, sk['summary'].get('requests') or 1),
                'web3_share_while_failing_pct': 100.0 * fail_requests / max(1, all_requests),
                'web3_5xx_while_failing': fail_5xx,
                'web3_2xx_after_return': returned_2xx,
                'web3_state_at_end': w3(end).get('state'),
                'p99_ms': sk['summary'].get('p99_ms'),
                'events': [e for e in events if '/web3 ' in e],
                'explain': explained, 'argv': lab._short_argv(sk['argv'])})
    finally:
        pools.stop()
    result['wall_s'] = time.monotonic() - t0
    return result


def render_fail(res, img_prefix=''):
    out = ['### Scenario 3: a server that fails fast', '',
           'web3\'s php-fpm is stopped %g s into each %g s run and started again at '
           '%g s; its nginx keeps accepting and answers `502` in well under a '
           'millisecond. `scheduler = leastconn`, `health = tcp` (the port still '
           'answers, so health checks see nothing wrong). With ejection: '
           '`outlier_consecutive = 5`, `outlier_ejection = %s`.'
           % (res['stop_at'], res['duration'], res['back_at'], res['ejection']), '']
    rows = [[r['label'], r['requests'], r['errors'], lab._f(r['error_pct'], 2) + ' %',
             lab._f(r['web3_share_while_failing_pct']) + ' %', r['web3_5xx_while_failing'],
             r['web3_2xx_after_return'], r['web3_state_at_end'], lab._f(r['p99_ms'])]
            for r in res['runs']]
    out.append(lab._md_table(['configuration', 'requests', 'client errors', 'error rate',
                              'web3 share while failing', 'web3 502s', 'web3 2xx after '
                              'php-fpm returned', 'web3 at the end', 'p99 ms'], rows))
    out.append('')
    for r in res['runs']:
        out.append('`%s`, web3\'s events:' % r['label'])
        out.append('')
        out.append('```')
        out.extend(r['events'] or ['(none)'])
        out.append('```')
        out.append('')
    out.extend(_charts(res['runs'], img_prefix))
    by = {r['label']: r for r in res['runs']}
    a, b = by.get('leastconn'), by.get('leastconn + ejection')
    if a and b:
        out.append('Failing fast looks like being fast: leastconn sends web3 %.0f %% of '
                   'the requests while it fails (its connections end at once, so it '
                   'always has the fewest) and clients see %d errors. With ejection they '
                   'see %d, the few requests before each ejection, and web3 serves %d '
                   'requests again once php-fpm is back.'
                   % (a['web3_share_while_failing_pct'], a['errors'], b['errors'],
                      b['web3_2xx_after_return']))
        out.append('')
    return '\n'.join(out)


# ---------------------------------------------------------------- scenario 4

RESTART_CONFIGS = (
    ('no slowstart', {}),
    ('slowstart', {'slowstart': None}),       # filled from sizes
)


def _p99(values):
    if not values:
        return None
    v = sorted(values)
    return v[max(0, -(-99 * len(v) // 100) - 1)]


def _shares_after(pools, offsets, t0, seconds, step, name='web3'):
    """Per step-second bucket from t0: name's share of what the pools' nginx
    logged and the p99 of its request times there."""
    logs = {p.name: p.log_requests(offsets.get(p.name, 0)) for p in pools.pools}
    rows = []
    for k in range(0, int(seconds), step):
        lo, hi = t0 + k, t0 + k + step
        counts = {n: sum(1 for w, _, _ in reqs if lo <= w < hi) for n, reqs in logs.items()}
        mine = [ms for w, ms, _ in logs.get(name, []) if lo <= w < hi]
        total = sum(counts.values())
        rows.append({'from_s': k, 'to_s': k + step, 'requests': total,
                     'share_pct': 100.0 * counts.get(name, 0) / total if total else 0.0,
                     'p99_ms': _p99(mine)})
    return rows


def run_restart(root, out_dir, sizes, log=print, tcplb=None, skewload=None,
                configs=RESTART_CONFIGS):
    """Scenario 4: web3 (nginx and php-fpm) stopped at stop_at and started at
    back_at under round robin, without and with slowstart."""
    d = sizes['restart_duration']
    stop_at, back_at = sizes['restart_stop_at'], sizes['restart_back_at']
    result = {'name': 'restart', 'duration': d, 'stop_at': stop_at, 'back_at': back_at,
              'slowstart': sizes['restart_slowstart'], 'warmup_ms': sizes['warmup_ms'],
              'warmup_s': sizes['warmup_s'], 'first': sizes['restart_first'], 'runs': []}
    t0 = time.monotonic()
    pools = lab.Pools(os.path.join(root, 'restart'), children=sizes['children'],
                      burn={n: sizes['page_cpu_ms'] for n in lab.POOL_NAMES},
                      wait_ms=sizes['page_wait_ms'],
                      warmup=(sizes['warmup_ms'], sizes['warmup_s'])).start()
    window = min(30, int(d - back_at))
    try:
        web3 = pools.get('web3')
        for label, keys in configs:
            keys = dict(keys)
            if 'slowstart' in keys:
                keys['slowstart'] = sizes['restart_slowstart']
            keys.update({'health': 'tcp', 'health_interval': '300ms', 'rise': 1,
                         'fall': 1, 'retries': 2})
            log('lab: restart under load, %s, %gs ...' % (label, d))
            slug = 'restart-' + label.replace(' ', '-')
            errors = []
            marks = {}
            with lab.Balancer(os.path.join(root, 'restart'), 'tcplb-' + slug, pools.pools,
                              workers=sizes['tcplb_workers'], binary=tcplb,
                              pool_keys=keys) as lb:
                def back():
                    marks['offsets'] = pools.log_offsets()
                    marks['when'] = time.time()
                    web3.mark_cold()
                    web3.launch()
                    web3.wait_ready()
                _later(stop_at, web3.stop, errors)
                _later(back_at, back, errors)
                svg = os.path.join(out_dir, 's4-%s.svg' % slug) if out_dir else None
                sk = _skewload(lb, sizes, d, svg=svg, skewload=skewload,
                               raw=os.path.join(root, 'restart', '%s.csv' % slug))
                events = lb.events()
                rc = lb.stop()
            if errors:
                raise lab.LabError('scenario 4: %s' % errors[0])
            if 'offsets' not in marks:
                raise lab.LabError('scenario 4: web3 was not restarted')
            if svg:
                lab.relabel_svg(svg, lb.port, 'round robin, %s; web3 restarted at %gs'
                                % (label, back_at))
            mine = sorted(web3.log_requests(marks['offsets']['web3']))
            first = [ms for _, ms, _ in mine[:sizes['restart_first']]]
            result['runs'].append({
                'label': label, 'keys': keys, 'tcplb_exit': rc,
                'svg': os.path.basename(svg) if svg else None,
                'requests': sk['summary'].get('requests'), 'errors': _errors_total(sk),
                'error_kinds': sk['errors'],
                'web3_first_n': len(first), 'web3_first_p99_ms': _p99(first),
                'web3_first_mean_ms': sum(first) / len(first) if first else None,
                'after': _shares_after(pools, marks['offsets'], marks['when'], window, 5),
                'p99_ms': sk['summary'].get('p99_ms'),
                'events': [e for e in events if '/web3 ' in e],
                'argv': lab._short_argv(sk['argv'])})
    finally:
        pools.stop()
    result['wall_s'] = time.monotonic() - t0
    return result


def render_restart(res, img_prefix=''):
    out = ['### Scenario 4: a server restarted under load', '',
           'Round robin; web3 (its nginx and php-fpm) is stopped %g s into each %g s run '
           'and started again at %g s, cold: for %g s after its start every page costs up '
           'to %g ms more CPU, falling linearly to none (the lab\'s stand-in for the '
           'caches a real application fills after a restart; `LAB_WARMUP_MS` in '
           '`tools/lab/app/index.php`). Health checks every 300 ms, `rise = 1`, `fall = 1`. '
           'With slow start: `slowstart = %s`, web3\'s weight grows from 1/20 to all of '
           'it in 20 steps. "first requests" are the first %d web3 served after its '
           'return, as its nginx logged them (`$request_time`).'
           % (res['stop_at'], res['duration'], res['back_at'], res['warmup_s'],
              res['warmup_ms'], res['slowstart'], res['first']), '']
    rows = [[r['label'], r['requests'], r['errors'], lab._f(r['web3_first_mean_ms']),
             lab._f(r['web3_first_p99_ms']), lab._f(r['p99_ms'])] for r in res['runs']]
    out.append(lab._md_table(['configuration', 'requests', 'client errors',
                              'web3 first requests mean ms', 'web3 first requests p99 ms',
                              'overall p99 ms'], rows))
    out.append('')
    out.append('web3\'s share of the requests, and the p99 of its own request times, '
               'in each 5 s after its return:')
    out.append('')
    runs = res['runs']
    if runs:
        header = ['seconds after the return'] + sum(
            [['%s: web3 share %%' % r['label'], '%s: web3 p99 ms' % r['label']]
             for r in runs], [])
        rows = []
        for i, b in enumerate(runs[0]['after']):
            row = ['%d-%d' % (b['from_s'], b['to_s'])]
            for r in runs:
                x = r['after'][i] if i < len(r['after']) else {}
                row += [lab._f(x.get('share_pct')), lab._f(x.get('p99_ms'))]
            rows.append(row)
        out.append(lab._md_table(header, rows))
        out.append('')
    out.extend(_charts(runs, img_prefix))
    by = {r['label']: r for r in runs}
    a, b = by.get('no slowstart'), by.get('slowstart')
    if a and b and a['after'] and b['after']:
        out.append('Without slow start round robin gives the cold web3 its third (%.1f %%) in '
                   'its first 5 s, and its first %d requests take %.1f ms on average (p99 '
                   '%.1f ms), where its p99 is %.1f ms once warm. With slow start its share grows '
                   '%s %% per 5 s, its first requests take %.1f ms (p99 %.1f ms), and the '
                   'overall p99 of the run is %.1f ms instead of %.1f ms.'
                   % (a['after'][0]['share_pct'], a['web3_first_n'],
                      a['web3_first_mean_ms'] or 0, a['web3_first_p99_ms'] or 0,
                      a['after'][-1]['p99_ms'] or 0,
                      ' / '.join('%.0f' % x['share_pct'] for x in b['after']),
                      b['web3_first_mean_ms'] or 0, b['web3_first_p99_ms'] or 0,
                      b['p99_ms'] or 0, a['p99_ms'] or 0))
        out.append('')
    return '\n'.join(out)


# ---------------------------------------------------------------- scenario 5

class Agents:
    """One tools/agent/fpm-agent per pool, on free ports, stopped by PID."""

    def __init__(self, root, pools, interval='0.25', window='2'):
        self.procs = []
        self.ports = {}
        for p in pools.pools:
            port = lab.free_port()
            self.ports[p.name] = port
            self.procs.append(lab.Proc(p.name + '/agent', [
                sys.executable, AGENT, '--listen', '%s:%d' % (lab.HOST, port),
                '--status', p.status_url, '--interval', interval, '--window', window],
                os.path.join(root, p.name + '-agent.out')).start())
        for port in self.ports.values():
            if not lab.wait_for(lambda: lab.is_listening(port), lab.START_TIMEOUT):
                self.stop()
                raise lab.LabError('fpm-agent did not listen on %d' % port)

    def stop(self):
        for p in self.procs:
            p.stop()


def run_agent(root, out_dir, sizes, log=print, tcplb=None, skewload=None):
    """Scenario 5: web3's php-fpm has agent_children workers, the others
    `children`; round robin without and with the agents."""
    d = sizes['agent_duration']
    children = {n: sizes['children'] for n in lab.POOL_NAMES}
    children['web3'] = sizes['agent_children']
    result = {'name': 'agent', 'duration': d, 'children': children, 'runs': []}
    t0 = time.monotonic()
    base = os.path.join(root, 'agent')
    pools = lab.Pools(base, children=children,
                      burn={n: sizes['page_cpu_ms'] for n in lab.POOL_NAMES},
                      wait_ms=sizes['page_wait_ms']).start()
    agents = None
    try:
        agents = Agents(base, pools)
        for label, with_agent in (('no agent', False), ('agent', True)):
            log('lab: the agent, %s, %gs ...' % (label, d))
            slug = 'agent-' + label.replace(' ', '-')
            opts = ({n: ' agent_port=%d' % p for n, p in agents.ports.items()}
                    if with_agent else None)
            keys = {'agent_interval': '1s'} if with_agent else {}
            with lab.Balancer(base, 'tcplb-' + slug, pools.pools,
                              workers=sizes['tcplb_workers'], binary=tcplb,
                              pool_keys=keys, server_options=opts) as lb:
                time.sleep(1.5 if with_agent else 0)    # a first agent answer
                svg = os.path.join(out_dir, 's5-%s.svg' % slug) if out_dir else None
                sk = _skewload(lb, sizes, d, svg=svg, skewload=skewload,
                               raw=os.path.join(base, '%s.csv' % slug))
                figs = _figures(lb)
                events = lb.events()
                rc = lb.stop()
            if svg:
                lab.relabel_svg(svg, lb.port, 'round robin, %s; web3 has %d php-fpm worker'
                                % (label, sizes['agent_children']))
            rows = lab._server_rows(sk, {n: {'total': f['total'], 'requests': f['requests'],
                                             'rt_p50': f['rt_ms']['p50'],
                                             'rt_p99': f['rt_ms']['p99']}
                                         for n, f in figs.items()})
            result['runs'].append({
                'label': label, 'tcplb_exit': rc, 'servers': rows,
                'eweights': {n: f['eweight'] for n, f in figs.items()},
                'svg': os.path.basename(svg) if svg else None,
                'requests': sk['summary'].get('requests'), 'errors': _errors_total(sk),
                'req_per_s': sk['summary'].get('req_per_s'),
                'p50_ms': sk['summary'].get('p50_ms'), 'p99_ms': sk['summary'].get('p99_ms'),
                'events': [e for e in events if 'agent' in e][-6:],
                'argv': lab._short_argv(sk['argv'])})
    finally:
        if agents is not None:
            agents.stop()
        pools.stop()
    result['wall_s'] = time.monotonic() - t0
    return result


def render_agent(res, img_prefix=''):
    ch = res['children']
    out = ['### Scenario 5: the agent', '',
           'web3\'s php-fpm has %d worker, web1\'s and web2\'s %d; round robin. With the '
           'agent: each pool runs `tools/agent/fpm-agent`, which reads php-fpm\'s status '
           'page (`pm.status_path`, `?json`) every 0.25 s and answers tcplb\'s agent check '
           '(`agent_interval = 1s`) with `up NN%%`: idle over all workers, divided by '
           '1 + the listen queue, averaged over about 2 s, at least 5 %%.'
           % (ch['web3'], ch['web1']), '']
    rows = []
    for r in res['runs']:
        for s in r['servers']:
            rows.append([r['label'], s['server'], s['requests'], lab._f(s['share_pct']),
                         lab._f(r['eweights'].get(s['server']), 2),
                         lab._f(s['p50_ms']), lab._f(s['p99_ms'])])
    out.append(lab._md_table(['configuration', 'server', 'requests', 'share %',
                              'eweight at the end', 'p50 ms', 'p99 ms'], rows))
    out.append('')
    rows = [[r['label'], r['requests'], lab._f(r['req_per_s'], 0), lab._f(r['p50_ms']),
             lab._f(r['p99_ms']), r['errors']] for r in res['runs']]
    out.append(lab._md_table(['configuration', 'answers', 'req/s', 'p50 ms', 'p99 ms',
                              'errors'], rows))
    out.append('')
    out.extend(_charts(res['runs'], img_prefix))
    by = {r['label']: r for r in res['runs']}
    a, b = by.get('no agent'), by.get('agent')
    if a and b:
        w3 = lambda run: next(s for s in run['servers'] if s['server'] == 'web3')
        out.append('Round robin cannot see that web3 has a quarter of the workers: it gets '
                   'its third, requests queue in its php-fpm (p50 %.1f ms there against '
                   '%.1f ms elsewhere) and, with a fixed number of requests in flight, the '
                   'whole pool runs at its pace: %.0f req/s. With the agents web3 says how '
                   'busy it is and its weight in force falls (%.2f at the end, the others '
                   '%s); it gets %.1f %% of the requests, its p50 is %.1f ms and the pool '
                   'serves %.0f req/s. The weight follows php-fpm\'s queue, so web3 keeps a '
                   'little queue: the agent moves load away as latency starts to climb, '
                   'it does not know the latency in advance.'
                   % (w3(a)['p50_ms'] or 0,
                      max(s['p50_ms'] or 0 for s in a['servers'] if s['server'] != 'web3'),
                      a['req_per_s'] or 0, b['eweights'].get('web3', 0),
                      ' / '.join('%.2f' % b['eweights'][n] for n in sorted(b['eweights'])
                                 if n != 'web3'),
                      w3(b)['share_pct'], w3(b)['p50_ms'] or 0, b['req_per_s'] or 0))
        out.append('')
    return '\n'.join(out)
