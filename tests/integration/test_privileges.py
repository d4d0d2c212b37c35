"""user/group in [global] (docs/configuration.md): tcplb binds,
opens its stats socket and its log as root, then runs as the configured
user -- real, effective and saved ids -- with the stats socket handed to
that user. An unknown user, or (as root) a stats socket in a directory
others may write to, stops the start with a message.

These cases need root (CI runs the suite as root); otherwise they skip."""

import grp
import os
import pwd
import re
import signal
import subprocess
import unittest

import harness

NOBODY = pwd.getpwnam('nobody')


def proc_ids(pid, field):
    """(real, effective, saved, fs) of the Uid: or Gid: line of pid."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return tuple(int(x) for x in line.split()[1:5])
    raise AssertionError('no %s: line in /proc/%d/status' % (field, pid))


@unittest.skipIf(os.geteuid() != 0, 'needs root: tcplb drops from root to a user')
class PrivilegeDropTest(harness.TcplbTestCase):

    def setUp(self):
        super().setUp()
        # nobody must reach the stats socket and the config (for a reload)
        os.chmod(self.tmp, 0o755)

    def start_as(self, user=None, group=None, sock_dir=None):
        self.echo = self.backend(harness.EchoBackend, 'echo')
        keys = {}
        if user:
            keys['user'] = user
        if group:
            keys['group'] = group
        cfg = self.config(workers=2, **keys)
        if sock_dir:
            cfg.stats_socket = os.path.join(sock_dir, 'stats.sock')
            cfg.global_items = [(k, cfg.stats_socket if k == 'stats_socket' else v)
                                for k, v in cfg.global_items]
        self.port = cfg.listener('tcp', pool='p')
        cfg.pool('p', [('echo', self.echo)], health='tcp',
                     health_interval='200ms', health_timeout='100ms')
        return cfg

    def start_fails(self, cfg, timeout=10):
        """Runs tcplb on cfg expecting it to exit non-zero during start;
        returns its output."""
        path = os.path.join(self.tmp, 'refused.ini')
        with open(path, 'w') as f:
            f.write(cfg.text())
        try:
            p = subprocess.run([harness.tcplb_bin(), '-f', path],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail('tcplb kept running with a config it must refuse')
        out = (p.stdout + p.stderr).decode('utf-8', 'replace')
        self.assertNotEqual(p.returncode, 0, out)
        return out

    def test_runs_as_nobody_with_real_effective_and_saved_ids(self):
        lb = self.tcplb(self.start_as(user='nobody'))
        harness.wait_started(lb)    # listening comes before the drop
        uid, gid = NOBODY.pw_uid, NOBODY.pw_gid
        self.assertEqual(proc_ids(lb.pid, 'Uid'), (uid,) * 4)
        self.assertEqual(proc_ids(lb.pid, 'Gid'), (gid,) * 4)
        with open('/proc/%d/status' % lb.pid) as f:
            groups = re.search(r'^Groups:(.*)$', f.read(), re.M).group(1).split()
        self.assertEqual(groups, [str(gid)], 'supplementary groups dropped')
        # every worker thread too
        for tid in os.listdir('/proc/%d/task' % lb.pid):
            with open('/proc/%d/task/%s/status' % (lb.pid, tid)) as f:
                text = f.read()
            self.assertIn('Uid:\t%d\t%d\t%d' % (uid, uid, uid), text, 'thread ' + tid)
        out = harness.wait_until(
            lambda: 'running as uid %d gid %d' % (uid, gid) in harness.tcplb_output(lb), 2)
        self.assertTrue(out, harness.tcplb_output(lb))

    def test_stats_socket_belongs_to_the_user_and_answers(self):
        lb = self.tcplb(self.start_as(user='nobody'))
        harness.wait_started(lb)
        st = os.stat(lb.stats_socket)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (NOBODY.pw_uid, 0o600))
        self.assertIn('version', lb.stats('show info'))
        self.assertTrue(lb.stats('show stat').startswith(harness.STAT_CSV_HEADER))

    def test_traffic_relays_after_the_drop(self):
        lb = self.tcplb(self.start_as(user='nobody'))
        payloads = [b'%d:' % i + os.urandom(3000) for i in range(20)]
        got = harness.echo_concurrently(self.port, payloads)
        self.assertEqual(got, payloads)
        # health checks (opened after the drop) keep the server up
        self.assertEqual(harness.server_state(lb, 'p', 'echo'), 'up')

    def test_group_key_chooses_the_group(self):
        lb = self.tcplb(self.start_as(user='nobody', group='nogroup'))
        harness.wait_started(lb)
        gid = grp.getgrnam('nogroup').gr_gid
        self.assertEqual(proc_ids(lb.pid, 'Gid'), (gid,) * 4)

    def test_reload_works_as_the_unprivileged_user(self):
        cfg = self.start_as(user='nobody')
        lb = self.tcplb(cfg)
        with open(lb.cfg_path) as f:
            text = f.read()
        self.assertIn('server = echo %s' % self.echo.addr, text)
        with open(lb.cfg_path, 'w') as f:
            f.write(text.replace('server = echo %s' % self.echo.addr,
                                 'server = echo %s weight=7' % self.echo.addr))
        harness.wait_started(lb)    # SIGHUP is handled from then on
        os.kill(lb.pid, signal.SIGHUP)
        self.assertTrue(harness.wait_until(
            lambda: harness.find_server(lb.stats_json(), 'p', 'echo')['weight'] == 7, 3),
            harness.tcplb_output(lb))
        s = self.connect(self.port)
        s.sendall(b'after reload')
        self.assertEqual(harness.recv_exact(s, 12), b'after reload')

    def test_unknown_user_stops_the_start_with_a_message(self):
        out = self.start_fails(self.start_as(user='no-such-user-tcplb'))
        self.assertIn('no-such-user-tcplb', out)
        self.assertRegex(out, r'no such user|unknown user')

    def test_root_refuses_stats_socket_in_world_writable_directory(self):
        d = os.path.join(self.tmp, 'open')
        os.mkdir(d)
        os.chmod(d, 0o777)
        out = self.start_fails(self.start_as(sock_dir=d))
        self.assertIn(d, out)
        self.assertIn('refusing', out)

    def test_sticky_world_writable_directory_is_accepted(self):
        d = os.path.join(self.tmp, 'sticky')
        os.mkdir(d)
        os.chmod(d, 0o1777)
        lb = self.tcplb(self.start_as(sock_dir=d))
        self.assertIn('version', lb.stats('show info'))
