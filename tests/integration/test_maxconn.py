"""Global maxconn (docs/reference.md: Configuration): at the limit tcplb stops accepting
instead of refusing; a connection that arrives over the limit waits in the
kernel backlog and is relayed as soon as a slot frees."""

import socket
import time

import harness


class MaxconnTest(harness.TcplbTestCase):

    def echo_once(self, sock, payload):
        sock.sendall(payload)
        return harness.recv_exact(sock, len(payload))

    def test_over_maxconn_waits_then_is_relayed_never_refused(self):
        echo = self.backend(harness.EchoBackend, 'echo')
        cfg = self.config(workers=2, maxconn=2)
        port = cfg.listener('tcp', pool='p', mode='tcp')
        cfg.pool('p', [('echo', echo)])
        lb = self.tcplb(cfg)

        first, second = self.connect(port), self.connect(port)
        self.assertEqual(self.echo_once(first, b'one'), b'one')
        self.assertEqual(self.echo_once(second, b'two'), b'two')
        self.assertEqual(lb.stats_json()['listeners'][0]['active'], 2)

        # The third connect completes in the kernel backlog, but tcplb does
        # not take it: no byte comes back while two are open.
        third = self.connect(port)
        third.sendall(b'three')
        third.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            third.recv(16)
        info = lb.stats('show info')
        self.assertIn('active: 2', info)

        # A slot frees: the waiting connection is accepted and relayed.
        first.close()
        third.settimeout(5)
        t0 = time.monotonic()
        self.assertEqual(harness.recv_exact(third, 5), b'three')
        self.assertLess(time.monotonic() - t0, 2.0)
        js = self.settled_stats(lb, lambda js: js['listeners'][0]['total'] == 3)
        self.assertEqual(js['listeners'][0]['rejected'], 0)
        second.close()
        third.close()
