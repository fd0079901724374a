"""Naming the process that holds a port, from /proc."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from harness.ports import Holder, conflict_message, listening_inodes, port_holder


def _listener(family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.listen()
    return sock


def test_names_this_process_as_the_holder_of_its_own_listener() -> None:
    with _listener() as sock:
        holder = port_holder(sock.getsockname()[1])
    assert holder is not None
    assert holder.pid == os.getpid()
    assert "python" in holder.command or "pytest" in holder.command


def test_finds_ipv6_listeners_too() -> None:
    with _listener(socket.AF_INET6) as sock:
        assert port_holder(sock.getsockname()[1]) == Holder(os.getpid(), port_holder_cmd())


def port_holder_cmd() -> str:
    return " ".join(
        part.decode() for part in Path("/proc/self/cmdline").read_bytes().split(b"\0") if part
    )


def test_a_connected_socket_on_the_port_is_not_a_listener() -> None:
    with _listener() as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            inodes = listening_inodes(port)
        assert len(inodes) == 1  # the client's end is ESTABLISHED, not LISTEN


def test_a_free_port_has_no_holder() -> None:
    with _listener() as sock:
        port = sock.getsockname()[1]
    assert port_holder(port) is None


def _fake_proc(tmp_path: Path, port: int, inode: int, *, fds: dict[int, str]) -> Path:
    net = tmp_path / "net"
    net.mkdir()
    header = "  sl  local_address rem_address st tx_queue rx_queue tr tm->when uid timeout inode\n"
    row = (
        f"   0: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        f"     0        0 {inode} 1\n"
    )
    (net / "tcp").write_text(header + row)
    (net / "tcp6").write_text(header)
    for pid, target in fds.items():
        fd_dir = tmp_path / str(pid) / "fd"
        fd_dir.mkdir(parents=True)
        os.symlink(target, fd_dir / "3")
        (tmp_path / str(pid) / "cmdline").write_bytes(
            b"postgres\0-p\0" + str(port).encode() + b"\0"
        )
    return tmp_path


def test_reads_the_tables_and_fd_links(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, 5432, 777, fds={41: "socket:[12]", 42: "socket:[777]"})
    assert port_holder(5432, proc) == Holder(42, "postgres -p 5432")


def test_an_unreadable_holder_gives_none(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, 5432, 777, fds={41: "socket:[12]"})
    assert listening_inodes(5432, proc) == {777}
    assert port_holder(5432, proc) is None


def test_the_message_names_port_holder_flag_and_variable() -> None:
    with _listener() as sock:
        port = sock.getsockname()[1]
        message = conflict_message(
            "the mock broker", "127.0.0.1", port, "--port", "SQUALL_BROKER_PORT"
        )
    assert f"127.0.0.1:{port}" in message
    assert f"pid {os.getpid()}" in message
    assert "--port N or SQUALL_BROKER_PORT=N" in message
    assert "--port 0 picks a free one" in message


def test_without_a_visible_holder_the_message_says_how_to_find_it() -> None:
    with _listener() as sock:
        port = sock.getsockname()[1]
    message = conflict_message("the system", "127.0.0.1", port, "--port", "SQUALL_SYSTEM_PORT")
    assert f"ss -ltnp 'sport = :{port}'" in message
