"""Separate hosts on one machine: a Linux network namespace per host, each with its own
address and data directory, the shared servers reached over a bridge in the root namespace.

``separate_hosts(["api", "pipeline_worker", ...], root)`` makes one host per name. Each
namespace has only loopback and one veth whose other end is on a bridge in the root
namespace; the bridge holds ``Network.server_address``, where the shared servers (Temporal,
the object store, a forwarder to PostgreSQL) listen. A private /24 is picked that nothing on
the machine routes yet, and every name carries a random tag, so two runs never meet.

Namespaces need root (CAP_NET_ADMIN). Where they are refused, or ``SEPARATE_HOSTS=loopback``
asks for it, each host gets a distinct loopback address (127.0.0.x) instead: separate data
directories and addresses, but one network stack. ``Network.isolation`` says which, and why.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.launch import Process, free_port

NAMESPACES = "network namespaces"
LOOPBACK = "loopback addresses"


@dataclass
class Host:
    """One host: an address, a data directory of its own, the processes started on it."""

    name: str
    address: str
    data_dir: Path
    netns: str | None  # None: a loopback address of the root namespace
    processes: list[Process] = field(default_factory=list)
    _ports_given: int = 0

    def free_port(self) -> int:
        """A port on this host's address that nothing listens on."""
        if self.netns is None:
            return free_port(self.address)  # loopback addresses share the root's ports
        # A fresh namespace listens on nothing: the ports a real host's services would use.
        self._ports_given += 1
        return 8000 + self._ports_given - 1

    def start(self, module: str, *, env: Mapping[str, str], log_path: Path) -> Process:
        """``python -m module`` on this host (``ip netns exec`` execs, so the pid is Python's)."""
        inside = ["ip", "netns", "exec", self.netns] if self.netns is not None else []
        process = Process([*inside, sys.executable, "-m", module], env=env, log_path=log_path)
        self.processes.append(process)
        return process

    def pids(self) -> set[int]:
        """Every process on this host, whatever started it."""
        if self.netns is not None:
            listed = _ip("netns", "pids", self.netns, check=False).stdout.split()
            return {int(pid) for pid in listed}
        found: set[int] = set()
        for process in self.processes:
            if process.exit_code is None:
                found.add(process.pid)
            found |= {child.pid for child in process.descendants()}
        return found

    def kill(self) -> int:
        """``kill -9`` every process on the host, as a host that loses power; how many."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            process.kill_tree()
        return len(pids)


@dataclass
class Network:
    """The hosts, and the address where the servers they share listen."""

    server_address: str
    hosts: dict[str, Host]
    isolation: str  # NAMESPACES, or LOOPBACK and the reason


@contextlib.contextmanager
def separate_hosts(names: list[str], root: Path) -> Iterator[Network]:
    """One host per name; namespaces, links and processes are removed however it ends."""
    tag = uuid.uuid4().hex[:6]
    refused = _namespaces_refused()
    made: list[str] = []
    network: Network | None = None
    try:
        if refused is None:
            try:
                network = _namespaced(names, root, tag, made)
            except subprocess.CalledProcessError as err:
                refused = f"`{' '.join(err.cmd)}` failed: {err.stderr.strip()}"
                _remove(made)
                made.clear()
        if network is None:
            network = _loopback(names, root, f"{LOOPBACK} ({refused})")
        yield network
    finally:
        if network is not None:
            for host in network.hosts.values():
                host.kill()
        _remove(made)


def _namespaces_refused() -> str | None:
    if os.environ.get("SEPARATE_HOSTS") == "loopback":
        return "SEPARATE_HOSTS=loopback"
    if os.geteuid() != 0:
        return "not root: creating network namespaces needs CAP_NET_ADMIN"
    return None


def _namespaced(names: list[str], root: Path, tag: str, made: list[str]) -> Network:
    subnet = _unused_subnet()
    bridge = f"sh{tag}"
    _ip("link", "add", bridge, "type", "bridge")
    made.append(f"link:{bridge}")
    _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
    _ip("link", "set", bridge, "up")
    hosts: dict[str, Host] = {}
    for number, name in enumerate(names):
        netns, outside, inside = f"sh-{tag}-{name}", f"sh{tag}r{number}", f"sh{tag}h{number}"
        address = f"{subnet}.{number + 2}"
        _ip("netns", "add", netns)
        made.append(f"netns:{netns}")
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        made.append(f"link:{outside}")  # deleting one end deletes the pair
        _ip("link", "set", inside, "netns", netns)
        _ip("link", "set", outside, "master", bridge)
        _ip("link", "set", outside, "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", inside)
        _ip("-n", netns, "link", "set", inside, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        hosts[name] = Host(name, address, _data_dir(root, name), netns)
    return Network(f"{subnet}.1", hosts, NAMESPACES)


def _loopback(names: list[str], root: Path, isolation: str) -> Network:
    # Linux answers on all of 127.0.0.0/8; a random block keeps concurrent runs apart.
    first = random.randrange(10, 240)
    hosts = {
        name: Host(name, f"127.0.0.{first + number}", _data_dir(root, name), None)
        for number, name in enumerate(names)
    }
    return Network("127.0.0.1", hosts, isolation)


def _data_dir(root: Path, name: str) -> Path:
    data_dir = root / name / "data"
    data_dir.mkdir(parents=True)
    return data_dir


def _unused_subnet() -> str:
    """A 10.x.y.0/24 that no address or route on the machine touches."""
    taken = _ip("-4", "-o", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    while True:
        subnet = f"10.{random.randrange(100, 250)}.{random.randrange(1, 255)}"
        if f"{subnet}." not in taken:
            return subnet


def _remove(made: list[str]) -> None:
    for thing in reversed(made):
        kind, name = thing.split(":", 1)
        if kind == "netns":
            # A namespace lives on while a process is in it: none may be left.
            for pid in _ip("netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", name, check=False)
        else:
            _ip("link", "del", name, check=False)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)
