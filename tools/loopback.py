"""Loopback helpers shared by the test harness, the benchmark and the lab:
a free TCP port on 127.0.0.1 for a server that will bind it next, and one
request/answer exchange with a server that closes after answering."""

import random
import socket
import threading

HOST = '127.0.0.1'

_given = set()
_lock = threading.Lock()


def free_port():
    """A port on 127.0.0.1 that nothing listens on now, never handed out
    twice in one process. Chosen below the kernel's ephemeral range (32768+)
    so the process's own outgoing connections cannot take it between this
    call and the server's bind; falls back to any port the kernel gives."""
    with _lock:
        for _ in range(500):
            port = random.randint(20000, 32000)
            if port in _given:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            finally:
                s.close()
            _given.add(port)
            return port
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        _given.add(port)
        return port


def exchange(port, request, timeout=5.0):
    """Connects to 127.0.0.1:port, sends the bytes `request` and returns
    everything the server sends until it closes (an HTTP request with
    `Connection: close`, for one)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        s.close()
    return b''.join(chunks)
