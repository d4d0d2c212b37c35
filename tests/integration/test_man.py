"""The man pages (man/*.[1-8]) are lint clean: `mandoc -Tlint -W warning`
and `groff -man -ww -z` print nothing and exit 0 on each. The pages that
`make install` installs exist under their names, each with a .TH line that
names it, and no source line is over 80 characters. Without tcplb: nothing
runs but the two formatters.

mandoc and groff are test dependencies (`make test-deps` installs Debian's
`mandoc` and `groff-base`). The lint tests skip only when neither is there;
with one of them missing, its test fails and says so."""

import os
import re
import shutil
import subprocess
import unittest

import harness

MAN_DIR = os.path.join(harness.REPO, 'man')
PAGE = re.compile(r'^[a-z][a-z0-9.]*\.[1-8]$')
# what `make install` installs; renaming one breaks the install rules
INSTALLED = ('tcplb.8', 'tcplb.ini.5', 'tcplbctl.1', 'logreport.1', 'skewload.1')
LINT_TIMEOUT = 60
MAX_SOURCE_LINE = 80

HAVE_MANDOC = shutil.which('mandoc') is not None
HAVE_GROFF = shutil.which('groff') is not None


def man_pages():
    """Every man page source under man/, sorted."""
    return sorted(os.path.join(MAN_DIR, f) for f in os.listdir(MAN_DIR)
                  if PAGE.match(f))


def run_linter(argv):
    """(exit status, everything it printed) of one linter run."""
    env = dict(os.environ, LC_ALL='C.UTF-8')
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          timeout=LINT_TIMEOUT)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@unittest.skipIf(not HAVE_MANDOC and not HAVE_GROFF,
                 'neither mandoc nor groff is installed (make test-deps '
                 'installs mandoc and groff-base): the man pages are not linted')
class ManLintTest(unittest.TestCase):

    def assert_silent(self, argv_of):
        pages = man_pages()
        self.assertTrue(pages, 'no man pages in %s' % MAN_DIR)
        for page in pages:
            argv = argv_of(page)
            with self.subTest(page=os.path.basename(page)):
                rc, out = run_linter(argv)
                self.assertEqual((rc, out), (0, ''),
                                 '%s:\n%s' % (' '.join(argv), out))

    def test_mandoc_lint_prints_nothing(self):
        if not HAVE_MANDOC:
            self.fail('mandoc is not installed (make test-deps installs it)')
        self.assert_silent(lambda page: ['mandoc', '-Tlint', '-W', 'warning', page])

    def test_groff_warns_about_nothing(self):
        if not HAVE_GROFF:
            self.fail('groff is not installed (make test-deps installs '
                      'groff-base)')
        self.assert_silent(lambda page: ['groff', '-man', '-ww', '-z', page])


class ManFilesTest(unittest.TestCase):

    def test_installed_pages_exist_and_name_themselves(self):
        for name in INSTALLED:
            with self.subTest(page=name):
                path = os.path.join(MAN_DIR, name)
                self.assertTrue(os.path.isfile(path), '%s is missing' % path)
                title, section = name.rsplit('.', 1)
                with open(path, encoding='ascii') as f:
                    th = [l for l in f if l.startswith('.TH ')]
                self.assertEqual(len(th), 1, '%s: one .TH line' % name)
                self.assertEqual(th[0].split()[1:3], [title.upper(), section])

    def test_source_lines_are_short(self):
        for page in man_pages():
            with open(page, encoding='ascii') as f:
                for n, line in enumerate(f, 1):
                    self.assertLessEqual(
                        len(line.rstrip('\n')), MAX_SOURCE_LINE,
                        '%s:%d is longer than %d characters'
                        % (os.path.basename(page), n, MAX_SOURCE_LINE))


if __name__ == '__main__':
    unittest.main()
