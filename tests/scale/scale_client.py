#!/usr/bin/env python3
"""scale_client.py -- holds N client connections to 127.0.0.1:PORT for
test_scale.py, in a process of its own (N descriptors would not fit next to
the test's). Each connection comes from one of many 127.0.x.y source
addresses (a source address has only ~28,000 ephemeral ports, and the
test's other connections need theirs), sends a payload of its own and must
get exactly that back from the echo server behind tcplb.

Driven over stdin/stdout, one line each way per step:
    (start)  -> "open N BYTES"       all N open, each echoed its payload
    echo     -> "echo N BYTES"       a second distinct payload on each
    close    -> "closed N"           each half-closed and read to EOF
Any failure prints "error WHAT" and exits 1."""

import argparse
import hashlib
import resource
import selectors
import socket
import sys
import time

PER_IP = 100        # connections per source address


def source_ip(i):
    k = i // PER_IP                     # 127.0.1.1, 127.0.1.2, ...
    return '127.0.%d.%d' % (1 + k // 250, 1 + k % 250)


def payload(i, rnd):
    """A distinct payload: index, round and a digest, 80 bytes."""
    head = b'%06d/%d:' % (i, rnd)
    return head + hashlib.sha256(head).hexdigest().encode()[:80 - len(head)]


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            raise EOFError('EOF after %d of %d bytes' % (len(buf), n))
        buf += data
    return bytes(buf)


def fail(what):
    print('error ' + what, flush=True)
    sys.exit(1)


def open_all(port, n, timeout):
    socks = []
    total = 0
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.bind((source_ip(i), 0))
            s.connect(('127.0.0.1', port))
            p = payload(i, 0)
            s.sendall(p)
            got = recv_exact(s, len(p))
        except (OSError, EOFError) as e:
            fail('connection %d from %s: %r' % (i, source_ip(i), e))
        if got != p:
            fail('connection %d: sent %r, got %r' % (i, p, got))
        total += len(p)
        socks.append(s)
    return socks, total


def echo_all(socks):
    total = 0
    for i, s in enumerate(socks):
        p = payload(i, 1)
        try:
            s.sendall(p)
            got = recv_exact(s, len(p))
        except (OSError, EOFError) as e:
            fail('connection %d, second payload: %r' % (i, e))
        if got != p:
            fail('connection %d: sent %r, got %r' % (i, p, got))
        total += len(p)
    return total


def close_all(socks, timeout):
    """Half-closes every connection, then waits for each EOF (the FIN has
    to cross tcplb to the server and come back)."""
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        s.shutdown(socket.SHUT_WR)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    left = len(socks)
    deadline = time.monotonic() + timeout
    while left:
        if time.monotonic() > deadline:
            fail('%d connections without EOF after %.0fs' % (left, timeout))
        for key, _ in sel.select(1.0):
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError as e:
                fail('connection %d while closing: %r' % (key.data, e))
            if data:
                fail('connection %d: %r after the echo' % (key.data, data))
            sel.unregister(key.fileobj)
            key.fileobj.close()
            left -= 1
    sel.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('-n', type=int, required=True)
    ap.add_argument('--timeout', type=float, default=10.0)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and args.n + 64 > hard:
        fail('%d connections need more than the hard open-file limit %d'
             % (args.n, hard))

    socks, total = open_all(args.port, args.n, args.timeout)
    print('open %d %d' % (len(socks), total), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == 'echo':
            print('echo %d %d' % (len(socks), echo_all(socks)), flush=True)
        elif cmd == 'close':
            close_all(socks, 60.0)
            print('closed %d' % len(socks), flush=True)
            return 0
        else:
            fail('unknown command %r' % cmd)
    return 0


if __name__ == '__main__':
    sys.exit(main())
