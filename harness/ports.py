"""Who holds a TCP port, so a "port in use" error can name the culprit; and a free one.

Linux keeps every socket in /proc/net/tcp{,6} with its inode, and every process's open
sockets as /proc/<pid>/fd links to ``socket:[<inode>]``. Joining the two names the listener.
Another user's processes are unreadable without privileges; then the answer is None and the
message falls back to the command that would find it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid}: {self.command}" if self.command else f"pid {self.pid}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` when asked, for a server that must be told its port
    (a PostgreSQL cluster, socat). Another process may take it before that server binds
    it: callers retry with a fresh one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """Inodes of the sockets listening on ``port`` (any address, IPv4 or IPv6)."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                inodes.add(int(fields[9]))
    return inodes


def port_holder(port: int, proc: Path = Path("/proc")) -> Holder | None:
    """The process listening on ``port``, when this process may see it."""
    inodes = listening_inodes(port, proc)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        if _links(entry / "fd") & targets:
            return Holder(int(entry.name), _command(entry))
    return None


def _links(fd_dir: Path) -> set[str]:
    try:
        fds = list(fd_dir.iterdir())
    except OSError:  # the process is gone, or another user's
        return set()
    links: set[str] = set()
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:  # closed meanwhile (listing a directory opens one itself)
            continue
    return links


def _command(process: Path) -> str:
    try:
        raw = (process / "cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def conflict_message(what: str, host: str, port: int, option: str, envvar: str) -> str:
    """One paragraph for a server that could not listen: what, who holds the port, what to do."""
    holder = port_holder(port)
    held = (
        f"{holder} holds it"
        if holder is not None
        else f"`ss -ltnp 'sport = :{port}'` shows what holds it"
    )
    return (
        f"{what} cannot listen on {host}:{port}: the port is already in use ({held}). "
        f"Stop that process, or choose another port with {option} N or {envvar}=N "
        f"({option} 0 picks a free one)."
    )
