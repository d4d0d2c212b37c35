"""The stats socket (docs/reference.md: Stats socket): its protocol, `help`, `show info`,
`show stat json`, errors, and the socket's mode."""

import os
import re
import stat
import unittest

import harness

LISTENER_FIELDS = {'name', 'bind', 'mode', 'pool', 'active', 'total', 'rejected'}
POOL_FIELDS = {'name', 'scheduler', 'servers'}
SERVER_FIELDS = {'name', 'addr', 'state', 'weight', 'active', 'total', 'failed',
                 'bytes_in', 'bytes_out'}


def answers(text):
    """Splits a reply into answers, each ended by an empty line."""
    return [a for a in text.split('\n\n') if a.strip()]


class StatsTest(harness.TcplbTestCase):

    def setUp(self):
        super().setUp()
        self.a = self.backend(harness.HttpBackend, 'a')
        self.b = self.backend(harness.HttpBackend, 'b')
        cfg = self.config(workers=2)
        self.port = cfg.listener('web', pool='p', mode='http')
        cfg.pool('p', [('a', self.a), ('b', self.b, 'weight=3')])
        self.lb = self.tcplb(cfg)

    def test_help_lists_commands(self):
        text = self.lb.stats('help')
        for cmd in ('help', 'show info', 'show stat'):
            self.assertIn(cmd, text)

    def test_show_info_has_required_keys(self):
        text = self.lb.stats('show info')
        info = {}
        for line in text.splitlines():
            m = re.match(r'^([A-Za-z0-9_]+):\s*(.*)$', line)
            if m:
                info[m.group(1)] = m.group(2)
        for key in ('version', 'uptime_s', 'workers', 'active', 'total'):
            self.assertIn(key, info, text)
        self.assertEqual(info['workers'], '2')
        float(info['uptime_s'])
        self.assertTrue(info['active'].isdigit(), info['active'])
        self.assertTrue(info['total'].isdigit(), info['total'])

    def test_every_answer_ends_with_empty_line(self):
        for cmd in ('help', 'show info', 'show stat', 'show stat json',
                    'no such command'):
            text = self.lb.stats(cmd)
            self.assertTrue(text.endswith('\n\n') and text.strip(),
                            '%s: %r' % (cmd, text[-200:]))

    def test_semicolon_separated_commands_both_answered(self):
        text = self.lb.stats('show info;show stat')
        parts = answers(text)
        self.assertEqual(len(parts), 2, text)
        self.assertIn('version:', parts[0])
        self.assertTrue(parts[1].startswith(harness.STAT_CSV_HEADER), parts[1])
        self.assertTrue(text.endswith('\n\n'))

    def test_two_lines_in_one_connection_both_answered(self):
        text = self.lb.stats_raw('show info\nshow stat\n')
        parts = answers(text)
        self.assertEqual(len(parts), 2, text)
        self.assertIn('version:', parts[0])
        self.assertTrue(parts[1].startswith(harness.STAT_CSV_HEADER), parts[1])

    def test_unknown_command_answers_error_and_next_command_works(self):
        text = self.lb.stats_raw('frobnicate everything\nshow info\n')
        parts = answers(text)
        self.assertEqual(len(parts), 2, text)
        self.assertTrue(parts[0].startswith('error:'), parts[0])
        self.assertIn('version:', parts[1])
        self.assertTrue(self.lb.stats('show stat json').lstrip().startswith('{'))
        self.assertTrue(self.lb.running())

    def test_socket_file_mode_is_0600(self):
        st = os.stat(self.lb.stats_socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(oct(stat.S_IMODE(st.st_mode)), oct(0o600))

    def test_show_stat_json_has_the_documented_fields(self):
        harness.http_request(self.port)
        js = self.settled_stats(self.lb)      # parsed with json.loads
        self.assertEqual(len(js['listeners']), 1)
        lst = js['listeners'][0]
        self.assertLessEqual(LISTENER_FIELDS, set(lst))
        self.assertEqual((lst['name'], lst['mode'], lst['pool']), ('web', 'http', 'p'))
        bind = '%s:%d' % (harness.HOST, self.port)
        if isinstance(lst['bind'], list):
            self.assertIn(bind, lst['bind'])
        else:
            self.assertEqual(lst['bind'], bind)
        self.assertEqual((lst['active'], lst['total'], lst['rejected']), (0, 1, 0))
        self.assertEqual(len(js['pools']), 1)
        pool = js['pools'][0]
        self.assertLessEqual(POOL_FIELDS, set(pool))
        self.assertEqual((pool['name'], pool['scheduler']), ('p', 'roundrobin'))
        self.assertEqual([s['name'] for s in pool['servers']], ['a', 'b'])
        for srv, backend, weight in zip(pool['servers'], (self.a, self.b), (1, 3)):
            self.assertLessEqual(SERVER_FIELDS, set(srv))
            self.assertEqual((srv['addr'], srv['state'], srv['weight']),
                             (backend.addr, 'up', weight))
            for key in ('active', 'total', 'failed', 'bytes_in', 'bytes_out'):
                self.assertIsInstance(srv[key], int, key)
        self.assertEqual(sum(s['total'] for s in pool['servers']), 1)
        used = [s for s in pool['servers'] if s['total']][0]
        self.assertGreater(used['bytes_in'], 0)
        self.assertGreater(used['bytes_out'], 0)


if __name__ == '__main__':
    unittest.main()
