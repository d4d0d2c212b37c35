"""Installing tcplb (mk/install.mk, debian/, docs/operations.md).

`make install DESTDIR=...` puts every file in its place with its mode and
never replaces an edited config; `make uninstall` takes back what install
put; the installed binaries run on the installed config. The installed unit
passes `systemd-analyze verify`: verify insists that the Exec binaries
exist, so it reads a copy whose install paths point into DESTDIR (with
--root= it also wants systemd's own units under that root).

`make deb` is built once for the class, in a copy of the tree in a temp dir
(nothing is written into the repo or next to it): its control data,
contents and maintainer scripts, lintian, and the packaged tcplb relaying
bytes exactly on the packaged config with only paths and ports rewritten."""

import grp
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import unittest.mock

import harness

MAKE_TIMEOUT = 120
DEB_TIMEOUT = 900           # the package build; about 15 s here
TOOL_TIMEOUT = 60

# what `make install` puts under PREFIX=/usr/local, with its mode
INSTALLED = {
    'usr/local/sbin/tcplb': 0o755,
    'usr/local/bin/tcplbctl': 0o755,
    'usr/local/bin/logreport': 0o755,
    'usr/local/bin/skewload': 0o755,
    'usr/local/share/man/man8/tcplb.8': 0o644,
    'usr/local/share/man/man5/tcplb.ini.5': 0o644,
    'usr/local/share/man/man1/tcplbctl.1': 0o644,
    'usr/local/share/man/man1/logreport.1': 0o644,
    'usr/local/share/man/man1/skewload.1': 0o644,
    'usr/local/etc/tcplb/tcplb.ini': 0o644,
    'usr/local/lib/systemd/system/tcplb.service': 0o644,
    'usr/local/etc/logrotate.d/tcplb': 0o644,
}
# ... and where each comes from, relative to the repo ('BUILD/' = the build
# dir of the tcplb under test)
SOURCES = {
    'usr/local/sbin/tcplb': 'BUILD/tcplb',
    'usr/local/bin/tcplbctl': 'tools/tcplbctl',
    'usr/local/bin/logreport': 'tools/logreport',
    'usr/local/bin/skewload': 'BUILD/skewload',
    'usr/local/share/man/man8/tcplb.8': 'man/tcplb.8',
    'usr/local/share/man/man5/tcplb.ini.5': 'man/tcplb.ini.5',
    'usr/local/share/man/man1/tcplbctl.1': 'man/tcplbctl.1',
    'usr/local/share/man/man1/logreport.1': 'man/logreport.1',
    'usr/local/share/man/man1/skewload.1': 'man/skewload.1',
    'usr/local/etc/tcplb/tcplb.ini': 'conf/tcplb.ini',
    'usr/local/etc/logrotate.d/tcplb': 'conf/tcplb.logrotate',
}
CONF = 'usr/local/etc/tcplb/tcplb.ini'
UNIT = 'usr/local/lib/systemd/system/tcplb.service'


def make_env():
    """The environment for a child make: without the jobserver of a make
    that may be running this suite, nor the variables that make exports
    from its command line (the ASan pass's BUILD, OPTFLAGS, SANFLAGS)."""
    env = dict(os.environ)
    for k in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'BUILD', 'OPTFLAGS',
              'SANFLAGS'):
        env.pop(k, None)
    return env


def build_dir():
    return os.path.dirname(harness.tcplb_bin())


def run_make(args, cwd=harness.REPO, timeout=MAKE_TIMEOUT):
    """make ARGS in cwd, with BUILD = the build dir under test and its two
    binaries taken as they are (-o: never rebuilt by install)."""
    b = build_dir()
    cmd = ['make', '--no-print-directory', 'BUILD=' + b,
           '-o', os.path.join(b, 'tcplb'), '-o', os.path.join(b, 'skewload')] + args
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env=make_env(), timeout=timeout)


def files_under(root):
    """{relative path: mode} of every file and symlink under root."""
    found = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            found[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return found


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def unit_values(text):
    """{key: [values]} of a unit file, in order."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in '#;[' or '=' not in line:
            continue
        k, _, v = line.partition('=')
        values.setdefault(k.strip(), []).append(v.strip())
    return values


def verify_unit(test, unit_path, root, prefixes, mandir):
    """systemd-analyze verify on a copy of unit_path whose paths under
    prefixes point into root; asserts exit 0 and not one message. Skips
    where systemd-analyze is missing."""
    tool = shutil.which('systemd-analyze')
    if tool is None:
        test.skipTest('systemd-analyze not installed: the unit is not verified')
    with open(unit_path) as f:
        text = f.read()
    for p in prefixes:
        text = text.replace(p, root.rstrip('/') + p)
    vdir = tempfile.mkdtemp(prefix='tcplb-verify-', dir='/tmp')
    test.addCleanup(shutil.rmtree, vdir, True)
    copy = os.path.join(vdir, 'tcplb.service')
    with open(copy, 'w') as f:
        f.write(text)
    env = dict(os.environ, MANPATH=mandir)      # Documentation=man:... exist
    p = subprocess.run([tool, 'verify', '--man=yes', copy], capture_output=True,
                       text=True, env=env, timeout=TOOL_TIMEOUT)
    out = (p.stdout + p.stderr).strip()
    test.assertEqual(p.returncode, 0, out)
    # unknown keys and bad values are only warnings: exit 0, one line each
    test.assertEqual(out, '', 'systemd-analyze verify is not silent')
    return copy


class InstallTest(unittest.TestCase):
    """make install / uninstall into a fresh DESTDIR each test."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix='tcplb-install-', dir='/tmp')
        self.addCleanup(self._tmp.cleanup)
        self.dest = os.path.join(self._tmp.name, 'root')

    def make(self, target, *extra, ok=True):
        p = run_make([target, 'DESTDIR=' + self.dest, 'PREFIX=/usr/local'] + list(extra))
        if ok:
            self.assertEqual(p.returncode, 0, 'make %s failed:\n%s%s'
                             % (target, p.stdout, p.stderr))
        return p

    def path(self, rel):
        return os.path.join(self.dest, rel)

    def source(self, rel):
        src = SOURCES[rel]
        if src.startswith('BUILD/'):
            return os.path.join(build_dir(), src[len('BUILD/'):])
        return os.path.join(harness.REPO, src)

    def test_install_puts_every_file_in_its_place_with_its_mode(self):
        out = self.make('install').stdout
        self.assertEqual(files_under(self.dest), INSTALLED,
                         'installed files and modes (exactly these, nothing else)')
        for rel in SOURCES:
            self.assertEqual(sha256(self.path(rel)), sha256(self.source(rel)),
                             '%s is a copy of %s' % (rel, SOURCES[rel]))
        self.assertIn('installed the example config', out)

    def test_unit_names_the_installed_paths(self):
        self.make('install')
        with open(self.path(UNIT)) as f:
            text = f.read()
        self.assertEqual(re.findall(r'@[a-z]+@', text), [],
                         'every @placeholder@ is substituted')
        v = unit_values(text)
        self.assertEqual(v['ExecStart'], ['/usr/local/sbin/tcplb -f /usr/local/etc/tcplb/tcplb.ini'])
        self.assertEqual(v['ExecStartPre'], ['/usr/local/sbin/tcplb -c -f /usr/local/etc/tcplb/tcplb.ini'])
        self.assertEqual(v['ExecReload'], ['/usr/local/sbin/tcplb -c -f /usr/local/etc/tcplb/tcplb.ini',
                                           '/bin/kill -HUP $MAINPID'])
        self.assertEqual(v['Type'], ['notify'])
        self.assertEqual(v['User'], ['tcplb'])
        self.assertEqual(v['RuntimeDirectory'], ['tcplb'])
        self.assertEqual(v['LogsDirectory'], ['tcplb'])

    def test_prefix_usr_with_sysconfdir_etc(self):
        self.make('install', 'PREFIX=/usr', 'sysconfdir=/etc')
        found = files_under(self.dest)
        for rel in ('usr/sbin/tcplb', 'usr/bin/tcplbctl', 'etc/tcplb/tcplb.ini',
                    'etc/logrotate.d/tcplb', 'usr/lib/systemd/system/tcplb.service',
                    'usr/share/man/man8/tcplb.8'):
            self.assertIn(rel, found)
        self.assertFalse(any(p.startswith('usr/local') for p in found), sorted(found))
        with open(self.path('usr/lib/systemd/system/tcplb.service')) as f:
            v = unit_values(f.read())
        self.assertEqual(v['ExecStart'], ['/usr/sbin/tcplb -f /etc/tcplb/tcplb.ini'])

    def test_install_again_keeps_an_edited_config(self):
        self.make('install')
        edited = '; mine\n' + open(self.path(CONF)).read().replace('8080', '8181')
        with open(self.path(CONF), 'w') as f:
            f.write(edited)
        os.unlink(self.path('usr/local/bin/tcplbctl'))
        out = self.make('install').stdout
        with open(self.path(CONF)) as f:
            self.assertEqual(f.read(), edited, 'the edited config is kept')
        self.assertIn('kept the existing', out)
        self.assertTrue(os.path.exists(self.path('usr/local/bin/tcplbctl')),
                        'everything else is installed again')

    def test_uninstall_removes_every_file_install_put(self):
        self.make('install')
        self.make('uninstall')
        self.assertEqual(files_under(self.dest), {}, 'no file left')
        self.assertFalse(os.path.exists(os.path.dirname(self.path(CONF))),
                         'etc/tcplb goes once empty')

    def test_uninstall_keeps_an_edited_config(self):
        self.make('install')
        with open(self.path(CONF), 'a') as f:
            f.write('; edited\n')
        out = self.make('uninstall').stdout
        self.assertEqual(list(files_under(self.dest)), [CONF], 'only the edited config')
        self.assertIn('kept', out)

    def test_installed_tcplb_checks_the_installed_config(self):
        self.make('install')
        tcplb = self.path('usr/local/sbin/tcplb')
        p = subprocess.run([tcplb, '-c', '-f', self.path(CONF)], capture_output=True,
                           text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('configuration is valid', p.stdout + p.stderr)
        # the same check refuses a broken copy: it does look at the file
        bad = os.path.join(self._tmp.name, 'bad.ini')
        with open(self.path(CONF)) as f:
            text = f.read()
        with open(bad, 'w') as f:
            f.write(text.replace('scheduler = roundrobin', 'scheduler = nosuch'))
        p = subprocess.run([tcplb, '-c', '-f', bad], capture_output=True, text=True,
                           timeout=TOOL_TIMEOUT)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r'bad\.ini:\d+: ')

    def test_installed_tools_run(self):
        self.make('install')
        for tool, needle in (('tcplbctl', 'usage: tcplbctl'),
                             ('logreport', 'usage: logreport'),
                             ('skewload', 'usage: skewload')):
            p = subprocess.run([self.path('usr/local/bin/' + tool), '--help'],
                               capture_output=True, text=True, timeout=TOOL_TIMEOUT)
            self.assertEqual(p.returncode, 0, '%s --help: %s%s' % (tool, p.stdout, p.stderr))
            self.assertIn(needle, p.stdout + p.stderr)

    def test_installed_unit_passes_systemd_analyze_verify(self):
        self.make('install')
        verify_unit(self, self.path(UNIT), self.dest, ['/usr/local/'],
                    self.path('usr/local/share/man'))
        # and the check does look: without the binary it fails
        os.unlink(self.path('usr/local/sbin/tcplb'))
        with self.assertRaises(AssertionError):
            verify_unit(self, self.path(UNIT), self.dest, ['/usr/local/'],
                        self.path('usr/local/share/man'))

    def test_logrotate_accepts_the_file(self):
        tool = shutil.which('logrotate') or (
            '/usr/sbin/logrotate' if os.access('/usr/sbin/logrotate', os.X_OK) else None)
        if tool is None:
            self.skipTest('logrotate not installed: the file is not parsed')
        self.make('install')
        logdir = os.path.join(self._tmp.name, 'log')
        os.mkdir(logdir)
        with open(self.path('usr/local/etc/logrotate.d/tcplb')) as f:
            text = f.read()
        me = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        self.assertIn('/var/log/tcplb/*.log', text)
        self.assertIn('create 0640 tcplb adm', text)
        text = (text.replace('/var/log/tcplb/', logdir + '/')
                    .replace('create 0640 tcplb adm', 'create 0640 %s %s' % (me, group)))
        conf = os.path.join(self._tmp.name, 'logrotate.conf')
        with open(conf, 'w') as f:
            f.write(text)
        p = subprocess.run([tool, '-d', '-s', os.path.join(self._tmp.name, 'state'), conf],
                           capture_output=True, text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn('error:', p.stdout + p.stderr)


# ---------------------------------------------------------------- the package

def copy_tree(dst):
    """The working tree (what `make deb` would package) without build
    output or .git."""
    def ignore(d, names):
        skip = {n for n in names if n == '__pycache__'}
        if os.path.abspath(d) == harness.REPO:
            skip |= {n for n in names if n.startswith('build') or n == '.git'}
        return skip
    shutil.copytree(harness.REPO, dst, symlinks=True, ignore=ignore)


@unittest.skipUnless(shutil.which('dpkg-buildpackage') and shutil.which('dh'),
                     'dpkg-buildpackage or debhelper not installed (make test-deps '
                     'installs them): the Debian package is not built')
class DebTest(harness.TcplbTestCase):
    """One `make deb` for the class, then its .deb looked at and run."""

    deb = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._pkgtmp = tempfile.TemporaryDirectory(prefix='tcplb-deb-', dir='/tmp')
        tree = os.path.join(cls._pkgtmp.name, 'tree')
        copy_tree(tree)
        t0 = time.monotonic()
        p = subprocess.run(['make', '--no-print-directory', 'deb'], cwd=tree,
                           capture_output=True, text=True, env=make_env(),
                           timeout=DEB_TIMEOUT)
        cls.build_seconds = time.monotonic() - t0
        cls.build_output = p.stdout + p.stderr
        if p.returncode != 0:
            cls._pkgtmp.cleanup()
            raise AssertionError('make deb failed (%d):\n%s'
                                 % (p.returncode, cls.build_output[-6000:]))
        debdir = os.path.join(tree, 'build', 'deb')
        debs = [n for n in os.listdir(debdir)
                if n.startswith('tcplb_') and n.endswith('.deb')]
        if len(debs) != 1:
            cls._pkgtmp.cleanup()
            raise AssertionError('expected one tcplb_*.deb in build/deb, got %r'
                                 % sorted(os.listdir(debdir)))
        cls.deb = os.path.join(debdir, debs[0])
        cls.root = os.path.join(cls._pkgtmp.name, 'root')
        subprocess.run(['dpkg-deb', '-x', cls.deb, cls.root], check=True,
                       timeout=TOOL_TIMEOUT)
        cls.control = os.path.join(cls._pkgtmp.name, 'control')
        subprocess.run(['dpkg-deb', '-e', cls.deb, cls.control], check=True,
                       timeout=TOOL_TIMEOUT)
        sys.stderr.write('(make deb: %.1fs) ' % cls.build_seconds)

    @classmethod
    def tearDownClass(cls):
        cls._pkgtmp.cleanup()
        super().tearDownClass()

    def dpkg_deb(self, *args):
        p = subprocess.run(['dpkg-deb'] + list(args) + [self.deb], capture_output=True,
                           text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def field(self, name):
        p = subprocess.run(['dpkg-deb', '-f', self.deb, name], capture_output=True,
                           text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def control_file(self, name):
        with open(os.path.join(self.control, name)) as f:
            return f.read()

    def test_control_depends_and_version(self):
        info = self.dpkg_deb('-I')
        self.assertIn('Package: tcplb', info)
        self.assertEqual(self.field('Section'), 'net')
        depends = [d.strip().split()[0] for d in self.field('Depends').split(',')]
        for lib in ('libev4', 'libinih1', 'libc-ares2', 'python3', 'adduser'):
            self.assertIn(lib, depends)
        self.assertTrue(any(d.startswith('libhttp-parser') for d in depends), depends)
        self.assertTrue(self.field('Description').strip())
        # the package version's upstream part is what tcplb -V says
        p = subprocess.run([os.path.join(self.root, 'usr/sbin/tcplb'), '-V'],
                           capture_output=True, text=True, timeout=TOOL_TIMEOUT)
        upstream = self.field('Version').rsplit('-', 1)[0]
        self.assertEqual(p.stdout.strip(), 'tcplb ' + upstream,
                         'debian/changelog and TCPLB_VERSION agree')

    def test_contents_modes_and_owners(self):
        listing = {}
        for line in self.dpkg_deb('-c').splitlines():
            perms, owner, _size, _date, _time, path = line.split(None, 5)
            listing[path.split(' -> ')[0]] = (perms, owner)
        want = {
            './usr/sbin/tcplb': '-rwxr-xr-x',
            './usr/bin/tcplbctl': '-rwxr-xr-x',
            './usr/bin/logreport': '-rwxr-xr-x',
            './usr/bin/skewload': '-rwxr-xr-x',
            './etc/tcplb/tcplb.ini': '-rw-r--r--',
            './etc/logrotate.d/tcplb': '-rw-r--r--',
            './lib/systemd/system/tcplb.service': '-rw-r--r--',
            './usr/share/man/man8/tcplb.8.gz': '-rw-r--r--',
            './usr/share/man/man5/tcplb.ini.5.gz': '-rw-r--r--',
            './usr/share/man/man1/tcplbctl.1.gz': '-rw-r--r--',
            './usr/share/man/man1/logreport.1.gz': '-rw-r--r--',
            './usr/share/man/man1/skewload.1.gz': '-rw-r--r--',
            './usr/share/doc/tcplb/copyright': '-rw-r--r--',
        }
        for path, perms in want.items():
            self.assertIn(path, listing)
            self.assertEqual(listing[path], (perms, 'root/root'), path)
        self.assertFalse([p for p in listing if p.startswith('./usr/local')])

    def test_conffiles_and_maintainer_scripts(self):
        conffiles = self.control_file('conffiles').split()
        self.assertIn('/etc/tcplb/tcplb.ini', conffiles)
        self.assertIn('/etc/logrotate.d/tcplb', conffiles)
        postinst = self.control_file('postinst')
        self.assertIn('adduser --system', postinst)
        self.assertIn('--home /nonexistent', postinst)
        # the user exists before debhelper's part starts the service
        self.assertLess(postinst.index('adduser'), postinst.index('deb-systemd-invoke'))
        self.assertIn("deb-systemd-helper enable 'tcplb.service'", postinst)
        self.assertIn('_dh_action=restart', postinst, 'an upgrade restarts it')
        for script in ('postinst', 'postrm', 'prerm'):
            p = subprocess.run(['sh', '-n', os.path.join(self.control, script)],
                               capture_output=True, text=True, timeout=TOOL_TIMEOUT)
            self.assertEqual(p.returncode, 0, '%s: %s' % (script, p.stderr))

    def test_packaged_unit(self):
        unit = os.path.join(self.root, 'lib/systemd/system/tcplb.service')
        with open(unit) as f:
            v = unit_values(f.read())
        self.assertEqual(v['ExecStart'], ['/usr/sbin/tcplb -f /etc/tcplb/tcplb.ini'])
        self.assertEqual(v['Type'], ['notify'])
        self.assertEqual(v['AmbientCapabilities'], ['CAP_NET_BIND_SERVICE'])
        verify_unit(self, unit, self.root, ['/usr/sbin/', '/etc/tcplb/'],
                    os.path.join(self.root, 'usr/share/man'))

    def test_lintian_reports_no_error(self):
        if not shutil.which('lintian'):
            self.fail('lintian not installed (make test-deps installs it)')
        p = subprocess.run(['lintian', self.deb], capture_output=True, text=True,
                           timeout=DEB_TIMEOUT)
        errors = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.startswith('E:')]
        self.assertEqual(errors, [])
        self.assertIn('lintian', self.build_output, 'make deb ran lintian too')

    def test_packaged_tcplb_checks_the_packaged_config(self):
        p = subprocess.run([os.path.join(self.root, 'usr/sbin/tcplb'), '-c', '-f',
                            os.path.join(self.root, 'etc/tcplb/tcplb.ini')],
                           capture_output=True, text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def packaged_config(self, backends):
        """The packaged config with only the stats socket, the log, the
        ports and the servers' addresses rewritten; each must be found."""
        with open(os.path.join(self.root, 'etc/tcplb/tcplb.ini')) as f:
            text = f.read()
        self.sock = os.path.join(self.tmp, 'tcplb.sock')
        self.log = os.path.join(self.tmp, 'access.log')
        self.port = harness.free_port()
        rewrites = [
            (r'^stats_socket = /run/tcplb/tcplb\.sock$', 'stats_socket = ' + self.sock),
            (r'^log = /var/log/tcplb/access\.log$', 'log = ' + self.log),
            (r'^stats_http = 127\.0\.0\.1:8404$', 'stats_http = 127.0.0.1:%d'
             % harness.free_port()),
            (r'^bind = 127\.0\.0\.1:8080$', 'bind = 127.0.0.1:%d' % self.port),
            (r'^server = app1 127\.0\.0\.1:8081$', 'server = app1 ' + backends[0].addr),
            (r'^server = app2 127\.0\.0\.1:8082$', 'server = app2 ' + backends[1].addr),
        ]
        for pattern, repl in rewrites:
            text, n = re.subn(pattern, repl, text, flags=re.M)
            self.assertEqual(n, 1, 'one line matches %r in the packaged config' % pattern)
        return text

    def test_packaged_tcplb_relays_bytes_exactly(self):
        echoes = [self.backend(harness.EchoBackend, 'app%d' % i) for i in (1, 2)]
        text = self.packaged_config(echoes)
        lb = harness.Tcplb(self.tmp, text, listen_ports=[self.port],
                           stats_socket=self.sock, name='packaged')
        self._lbs.append(lb)
        lb.log_path = self.log
        binary = os.path.join(self.root, 'usr/sbin/tcplb')
        with unittest.mock.patch.object(harness, 'tcplb_bin', return_value=binary):
            lb.start()
        # the packaged health checks (tcp, rise 2, every 2s) bring both up
        harness.wait_until(lambda: all(
            harness.find_server(lb.stats_json(), 'app', s)['state'] == 'up'
            for s in ('app1', 'app2')), timeout=10)
        payloads = [os.urandom(200000), os.urandom(300000)]
        got = harness.echo_concurrently(self.port, payloads)
        for data, back in zip(payloads, got):
            self.assertEqual(len(back), len(data))
            self.assertTrue(back == data, 'bytes echoed exactly')
        # (health checks connect and close: 0 bytes; a backend records a
        # connection just after its EOF reached the client)
        def relayed():
            return [[r for r in e.received if r[0]] for e in echoes]
        harness.wait_until(lambda: sum(map(len, relayed())) >= 2, timeout=5)
        per_server = relayed()
        self.assertEqual([len(r) for r in per_server], [1, 1],
                         'round robin: one connection to each server')
        self.assertEqual(sorted(r[0] for r in per_server),
                         sorted((len(d), hashlib.sha256(d).hexdigest()) for d in payloads),
                         'each server got every byte of its client')
        # the packaged tcplbctl reads the rewritten stats socket
        p = subprocess.run([sys.executable, os.path.join(self.root, 'usr/bin/tcplbctl'),
                            '-s', self.sock, 'show', 'stat'], capture_output=True,
                           text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r'app1')
        self.assertRegex(p.stdout, r'app2')
        harness.wait_until(lambda: len(harness.access_log_lines(lb)) >= 2, timeout=5)
        lines = harness.access_log_lines(lb)
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(all('term=ok' in ln for ln in lines), lines)


if __name__ == '__main__':
    unittest.main()
