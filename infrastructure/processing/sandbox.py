"""The walls the kernel puts around a parser child: namespaces, Landlock, resource limits.

A parser of untrusted bytes is native code a crafted file may take over, so the child it
runs in gets, before it reads a byte of its input (``child.py`` applies these in order):

1. **Namespaces**: a new user namespace (the child keeps its uid, loses every capability
   it had in the worker's namespace, root's included, and with them ptrace access to the
   worker's processes: their ``/proc/<pid>/environ`` and ``mem``) holding a new network
   namespace,
   whose only interface, a loopback, is down: no connection to anything, UDP and Unix
   abstract sockets included. Unprivileged where the kernel allows user namespaces;
   else the network namespace alone when the process may make one (root); else none.
2. **Landlock** (Linux 5.13+, unprivileged): the child reads files only beneath the Python
   installation, the system's libraries and data (``/usr``, ``/lib``), the packages of
   the modules it runs, and its one input file; it writes, creates, executes nothing;
   from ABI 4 it opens no TCP connection; from ABI 6 it signals no process and reaches no
   abstract socket outside itself. So ``/proc/<worker>/environ``, the blob directory,
   the other uploads in the scratch directory and ``/run/secrets`` are out of reach
   whatever uid the child has, root included, and without making the worker
   undumpable (py-spy keeps attaching to the worker as before; only where neither
   Landlock nor a user namespace is granted does the worker make itself undumpable).
3. **Resource limits**: CPU, address space, core dumps (none), open files, processes
   (1: it cannot fork or start a thread, where Linux enforces it: not for uid 0),
   file size (0).
4. **Not dumpable**: another child (another document) cannot read its memory through
   ptrace or ``/proc/<pid>/mem`` even where Landlock is missing; the cost is that
   py-spy attaches to a parser child only as root.

What the kernel refuses is found once per fork server by ``probe`` (in a forked process,
so the server itself stays unconfined) and reported to the worker, which logs it once;
the children then apply exactly what the probe found, and a child that cannot apply one
of those fails rather than run with less.

Linux only; ``probe`` reports nothing available elsewhere. Standard library only (ctypes).
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import sysconfig
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# linux/sched.h
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
# linux/prctl.h
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
# The Landlock system calls have one number on every architecture (asm-generic).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
# linux/landlock.h: file system rights, by the ABI version that introduced them.
_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_RIGHTS = 0b11  # bind and connect TCP (ABI 4)
_SCOPES = 0b11  # abstract Unix sockets and signals (ABI 6)
# Where a system keeps the code and data every process may read.
_SYSTEM_ROOTS = (
    *("/usr", "/lib", "/lib64", "/lib32"),
    # What the C library and the standard library read from /etc, late: none a secret.
    *("/etc/ld.so.cache", "/etc/localtime", "/etc/mime.types"),
)


class SandboxError(OSError):
    """A measure the probe found available could not be applied in a child."""


@dataclass(frozen=True)
class Sandbox:
    """What the kernel lets a parser child do to confine itself (from ``probe``)."""

    user_namespace: bool = False
    network_namespace: bool = False
    # 0 when Landlock is missing (older kernel, not in the LSM list, blocked by seccomp).
    landlock_abi: int = 0

    def to_json(self) -> dict[str, bool | int]:
        return {
            "user_namespace": self.user_namespace,
            "network_namespace": self.network_namespace,
            "landlock_abi": self.landlock_abi,
        }

    @classmethod
    def from_json(cls, value: object) -> Sandbox:
        if not isinstance(value, dict):
            return cls()
        return cls(
            user_namespace=value.get("user_namespace") is True,
            network_namespace=value.get("network_namespace") is True,
            landlock_abi=int(value.get("landlock_abi") or 0),
        )

    def within(self, limit: Sandbox) -> Sandbox:
        """No more than ``limit`` (tests of a kernel that refuses some walls)."""
        return Sandbox(
            user_namespace=self.user_namespace and limit.user_namespace,
            network_namespace=self.network_namespace and limit.network_namespace,
            landlock_abi=min(self.landlock_abi, limit.landlock_abi),
        )

    @property
    def guards_proc(self) -> bool:
        """Whether a child is kept from the worker's ``/proc`` files without the worker's
        help: Landlock refuses them, and from a user namespace of its own Linux refuses
        another namespace's processes to anyone without CAP_SYS_PTRACE over it."""
        return self.landlock_abi > 0 or self.user_namespace

    def missing(self) -> list[str]:
        """The measures this kernel refused, in words an operator can act on."""
        gaps = []
        if not self.network_namespace:
            gaps.append("network namespace (the parser can reach the network)")
        if not self.user_namespace:
            gaps.append("user namespace (the parser has the worker's capabilities)")
        if self.landlock_abi == 0:
            gaps.append("Landlock (the parser can read every file the worker can)")
        elif self.landlock_abi < 6:
            gaps.append(f"Landlock ABI 6 (ABI {self.landlock_abi}: the parser can signal)")
        return gaps


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _call(name: str, *args: int | None) -> int:
    if _libc is None:
        raise OSError(38, "not Linux")  # ENOSYS
    function = getattr(_libc, name)
    function.restype = ctypes.c_long
    # Every argument as a C long: ctypes would pass a bare int as a 32-bit int, cutting
    # a pointer in half.
    result = int(function(*(None if arg is None else ctypes.c_long(arg) for arg in args)))
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")
    return result


def prctl(option: int, value: int) -> None:
    _call("prctl", option, value, 0, 0, 0)


def enter_namespaces(sandbox: Sandbox) -> None:
    """Moves this (single-threaded) process into new user and network namespaces."""
    if not sandbox.network_namespace:
        return
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNET | (CLONE_NEWUSER if sandbox.user_namespace else 0)
    try:
        _call("unshare", flags)
        if sandbox.user_namespace:
            # The same ids inside as outside: files keep their owners, and the process
            # stays the user it was (kernel: setgroups must be denied before gid_map).
            for name, line in (
                ("setgroups", "deny"),
                ("uid_map", f"{uid} {uid} 1"),
                ("gid_map", f"{gid} {gid} 1"),
            ):
                with open(f"/proc/self/{name}", "w") as file:
                    file.write(line)
    except OSError as err:
        raise SandboxError(err.errno, f"entering namespaces: {err}") from None


def confine_files(abi: int, readable: Iterable[str], input_fd: int | None) -> None:
    """Lets this process read only ``readable`` and the file open as ``input_fd``, write
    and execute nothing, and (by ABI) reach no TCP port, signal or abstract socket
    outside itself. Irreversible, and inherited by anything it starts."""
    if abi <= 0:
        return
    handled_fs = _FS_RIGHTS_BY_ABI[max(v for v in _FS_RIGHTS_BY_ABI if v <= abi)]
    attr = _RulesetAttr(
        handled_access_fs=handled_fs,
        handled_access_net=_NET_RIGHTS if abi >= 4 else 0,
        scoped=_SCOPES if abi >= 6 else 0,
    )
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    try:
        ruleset = _call("syscall", _SYS_LANDLOCK_CREATE_RULESET, ctypes.addressof(attr), size, 0)
    except OSError as err:
        raise SandboxError(err.errno, f"Landlock: {err}") from None
    try:
        for path in readable:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a root this system does not have
            try:
                directory = os.path.isdir(f"/proc/self/fd/{fd}")
                _add_rule(ruleset, fd, _FS_READ_FILE | (_FS_READ_DIR if directory else 0))
            finally:
                os.close(fd)
        for device, rights in (("/dev/null", _FS_READ_FILE | _FS_WRITE_FILE),):
            fd = os.open(device, os.O_PATH | os.O_CLOEXEC)
            try:
                _add_rule(ruleset, fd, rights)
            finally:
                os.close(fd)
        if input_fd is not None:
            _add_rule(ruleset, input_fd, _FS_READ_FILE)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        _call("syscall", _SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    except OSError as err:
        raise SandboxError(err.errno, f"Landlock: {err}") from None
    finally:
        os.close(ruleset)


def probe() -> Sandbox:
    """What this kernel lets a child of this process apply, each measure tried in a
    forked process of its own (so this one stays unconfined)."""
    if sys.platform != "linux":
        return Sandbox()
    user = _works(lambda: enter_namespaces(Sandbox(user_namespace=True, network_namespace=True)))
    network = user or _works(lambda: enter_namespaces(Sandbox(network_namespace=True)))
    abi = landlock_abi()
    if abi and not _works(lambda: confine_files(abi, ["/usr"], None)):
        abi = 0
    return Sandbox(user_namespace=user, network_namespace=network, landlock_abi=abi)


def _works(attempt: Callable[[], None]) -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            attempt()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers; 0 without Landlock."""
    try:
        return _call(
            "syscall", _SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION
        )
    except OSError:
        return 0


def lower_limit(which: int, soft: int, hard: int | None = None) -> None:
    """Sets a resource limit, never above the hard limit the process already has."""
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def readable_roots(module_files: Iterable[str]) -> list[str]:
    """What a parser child may read: the system's libraries and data, the Python
    installation (standard library, site-packages) and, for code that lives elsewhere
    (the project's own packages in a checkout), the top-level package directories of
    ``module_files`` only. A checkout's other contents (its ``data`` directory, a
    ``.env``) stay out of reach."""
    installed = {
        os.path.realpath(path)
        for path in (
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            *(sysconfig.get_paths().get(key, "") for key in ("stdlib", "platstdlib", "purelib")),
            *(sysconfig.get_paths().get(key, "") for key in ("platlib",)),
        )
        if path
    }
    roots = set(_SYSTEM_ROOTS) | installed
    entries = [os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)]
    for file in module_files:
        real = os.path.realpath(file)
        if _beneath(real, roots):
            continue
        for entry in entries:
            if _beneath(real, [entry]):
                top = os.path.relpath(real, entry).split(os.sep)[0]
                roots.add(os.path.join(entry, top))
                break
    return sorted(roots)


def _beneath(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _add_rule(ruleset: int, fd: int, rights: int) -> None:
    rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
    _call(
        "syscall", _SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH,
        ctypes.addressof(rule), 0,
    )  # fmt: skip


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]
