"""`make run` (tools/demo.sh with conf/demo.ini; README: Quick start): the
three demo backends and tcplb start, the hints printed name the live page
whose URL answers with the page, /health says ok, requests are spread over
web1..web3 as the config's weights say, and a SIGTERM to the script stops
every process it started.

The demo's ports are fixed by conf/demo.ini (8080, 8404, 9001-9003): the
test skips, saying which, when one of them is taken."""

import os
import re
import signal
import subprocess
import time
import unittest
import urllib.request

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DEMO_PORTS = (8080, 8404, 9001, 9002, 9003)


class DemoTest(unittest.TestCase):

    def setUp(self):
        busy = [p for p in DEMO_PORTS if harness.is_listening(p)]
        if busy:
            self.skipTest('demo ports in use: %s' % busy)
        build = os.path.dirname(harness.require_bin())
        self.out_path = os.path.join('/tmp', 'tcplb-demo-test-%d.out' % os.getpid())
        self.out = open(self.out_path, 'wb')
        self.proc = subprocess.Popen(['sh', os.path.join(ROOT, 'tools', 'demo.sh')],
                                     env=dict(os.environ, BUILD=build),
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        self.addCleanup(self.cleanup)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()
        os.unlink(self.out_path)

    def output(self):
        with open(self.out_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def test_demo_prints_the_page_url_serves_it_and_stops_cleanly(self):
        self.assertTrue(harness.wait_until(
            lambda: 'tcplb: started' in self.output() or self.proc.poll() is not None, 15),
            self.output())
        self.assertIsNone(self.proc.poll(), self.output())
        m = re.search(r'live page (http://[0-9.]+:\d+/)', self.output())
        self.assertIsNotNone(m, 'no live page URL in:\n' + self.output())
        url = m.group(1)
        with urllib.request.urlopen(url, timeout=5) as r:
            self.assertEqual(r.status, 200)
            body = r.read().decode()
        self.assertIn('<html', body.lower())
        with urllib.request.urlopen(url + 'health', timeout=5) as r:
            self.assertEqual(r.read(), b'ok\n')

        got = {}
        for _ in range(8):          # two rounds of weights 1, 1, 2
            r = harness.http_request(8080, timeout=5)
            self.assertEqual(r.status, 200)
            name = r.body.decode().strip()
            got[name] = got.get(name, 0) + 1
        self.assertEqual(got, {'web1': 2, 'web2': 2, 'web3': 4})

        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(15), 143)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(harness.is_listening(p)
                                                  for p in DEMO_PORTS):
            time.sleep(0.05)
        self.assertEqual([p for p in DEMO_PORTS if harness.is_listening(p)], [],
                         'the demo left processes listening')


if __name__ == '__main__':
    unittest.main()
