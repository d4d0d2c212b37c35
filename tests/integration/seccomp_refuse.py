"""Runs a command with io_uring_setup(2) refused, as a container runtime's
seccomp profile refuses it (Docker's default does): the call fails with
ENOSYS. test_io.py puts this in front of tcplb (Tcplb.wrapper) to see the
fallback to epoll; it execs the command in the same process.

usage: python3 seccomp_refuse.py COMMAND [ARG...]   (x86-64 Linux only)"""

import ctypes
import os
import struct
import sys

NR_IO_URING_SETUP = 425          # x86-64 (and every arch since 5.1)
AUDIT_ARCH_X86_64 = 0xc000003e
ENOSYS = 38
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7fff0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL = 0x00000000

# classic BPF over struct seccomp_data {int nr; u32 arch; ...}
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
PROGRAM = [
    (BPF_LD_W_ABS, 0, 0, 4),                   # arch
    (BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
    (BPF_RET_K, 0, 0, SECCOMP_RET_KILL),       # another ABI: refuse to run
    (BPF_LD_W_ABS, 0, 0, 0),                   # nr
    (BPF_JEQ_K, 0, 1, NR_IO_URING_SETUP),
    (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),
    (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
]


class SockFprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    code = b''.join(struct.pack('=HBBI', *insn) for insn in PROGRAM)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(len(PROGRAM), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        sys.stderr.write('seccomp_refuse: prctl: %s\n' % os.strerror(ctypes.get_errno()))
        return 1
    os.execvp(argv[1], argv[1:])
    return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
