"""SSH behind one module: host-key scanning and pinning, strict connections, remote commands.

Every connection made here checks the host key against the client's pinned ``known_hosts`` and nothing else
(no system or user known_hosts, no ssh_config, no agent): an unknown key is refused, a changed key raises
:class:`HostKeyMismatch` naming both fingerprints. Nothing here ever adds a key on its own; only
:func:`write_pins`, after a person (or ``--yes``) confirmed the fingerprints, writes one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import signal
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import paramiko

from . import sshmux
from .errors import HostKeyMismatch, InventoryError, RemoteError
from .inventory import Host, Inventory

if TYPE_CHECKING:
    import fabric

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ScannedKey:
    host: str
    known_hosts_name: str
    key_type: str
    key_b64: str

    @property
    def fingerprint(self) -> str:
        return fingerprint_b64(self.key_b64)

    def known_hosts_line(self) -> str:
        return f"{self.known_hosts_name} {self.key_type} {self.key_b64}"


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str


def fingerprint_b64(key_b64: str) -> str:
    """OpenSSH's SHA256 fingerprint, as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_fingerprint(key: paramiko.PKey) -> str:
    return fingerprint_b64(key.get_base64())


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:.0f}s"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip() or type(exc).__name__
    # paramiko reports a server that accepts TCP but never speaks either way, depending on the stage.
    if "banner" in text.lower() or "no existing session" in text.lower():
        return f"no SSH banner within {timeout:.0f}s (not an SSH server, or a tarpit)"
    return text.splitlines()[0]


def scan_host_key(host: Host, timeout: float = DEFAULT_TIMEOUT) -> ScannedKey:
    """Ask a host for its key without authenticating (what ssh-keyscan does), within ``timeout``."""
    sock: socket.socket | None = None
    transport: paramiko.Transport | None = None
    try:
        sock = socket.create_connection((host.address, host.port), timeout=timeout)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return ScannedKey(host.name, host.known_hosts_name, key.get_name(), key.get_base64())
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise RemoteError(f"{host.name} ({host.address}:{host.port}): {_describe(exc, timeout)}") from exc
    finally:
        if transport is not None:
            transport.close()
        elif sock is not None:
            sock.close()


def pinned(inv: Inventory) -> paramiko.HostKeys:
    if not inv.known_hosts.exists():
        raise RemoteError(
            f"client {inv.client} has no pinned host keys",
            hint=f"pin them first: 'sentryctl hosts pin --client {inv.client}'",
        )
    keys = paramiko.HostKeys()
    _load_pins(inv, keys.load)
    return keys


def _load_pins(inv: Inventory, load: Callable[[str], None]) -> None:
    """paramiko raises whatever its key parser hits on a garbage line; that is a bad file, said in one line."""
    try:
        load(str(inv.known_hosts))
    except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError, UnicodeDecodeError) as exc:
        raise InventoryError(
            f"{inv.known_hosts} cannot be read: {type(exc).__name__}: {exc}".splitlines()[0],
            hint=f"re-pin with 'sentryctl hosts pin --client {inv.client}'",
        ) from exc


def pinned_fingerprint(keys: paramiko.HostKeys, host: Host) -> str | None:
    entry = keys.lookup(host.known_hosts_name)
    if not entry:
        return None
    return key_fingerprint(next(iter(entry.values())))


def write_pins(inv: Inventory, scanned: Iterable[ScannedKey]) -> Path:
    """Write (or update) the pinned keys; entries for other hosts stay as they are. Atomic."""
    names = {s.known_hosts_name for s in scanned}
    kept: list[str] = []
    if inv.known_hosts.exists():
        for line in inv.known_hosts.read_text().splitlines():
            first = line.split(" ", 1)[0]
            if line.strip() and not line.startswith("#") and not names.intersection(first.split(",")):
                kept.append(line)
    lines = kept + [s.known_hosts_line() for s in sorted(scanned, key=lambda s: s.host)]
    tmp = inv.known_hosts.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    tmp.chmod(0o644)
    os.replace(tmp, inv.known_hosts)
    return inv.known_hosts


def strict_client(inv: Inventory) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if inv.known_hosts.exists():
        _load_pins(inv, client.load_host_keys)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def connect(inv: Inventory, host: Host, timeout: float = DEFAULT_TIMEOUT) -> paramiko.SSHClient:
    """An authenticated, strictly checked connection; every failure is a RemoteError naming the host."""
    client = strict_client(inv)
    if not inv.known_hosts.exists():
        pinned(inv)  # raises with the fix
    try:
        client.connect(
            hostname=host.address,
            port=host.port,
            username=host.user,
            key_filename=str(host.key_file) if host.key_file else None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            allow_agent=host.key_file is None,
            look_for_keys=host.key_file is None,
        )
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        raise classify(inv, host, exc, timeout) from exc
    return client


def classify(inv: Inventory, host: Host, exc: BaseException, timeout: float) -> RemoteError:
    """One precise RemoteError for any way a connection can fail (shared by paramiko and Fabric paths)."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(host.name, key_fingerprint(exc.expected_key), key_fingerprint(exc.key))
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return RemoteError(
            f"{host.name} ({host.known_hosts_name}) has no pinned host key",
            hint=f"pin it: 'sentryctl hosts pin --client {inv.client}'",
        )
    if isinstance(exc, RemoteError):
        return exc
    return RemoteError(f"{host.name} ({host.address}:{host.port}): {_describe(exc, timeout)}")


def run(client: paramiko.SSHClient, command: str, timeout: float = 60.0) -> CommandResult:
    """Run one command; its output is read fully (bounded by ``timeout``) before the exit code."""
    try:
        _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        rc = stdout.channel.recv_exit_status()
    except (OSError, paramiko.SSHException) as exc:
        raise RemoteError(f"command timed out or failed: {_describe(exc, timeout)}") from exc
    return CommandResult(rc, out, err)


def fabric_connection(inv: Inventory, host: Host, timeout: float = DEFAULT_TIMEOUT) -> fabric.Connection:
    """A Fabric connection whose SSH client is our strict one (Fabric's own would auto-add unknown keys)."""
    import fabric

    config = fabric.Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}})
    conn = fabric.Connection(
        host=host.address,
        user=host.user,
        port=host.port,
        config=config,
        connect_timeout=int(timeout),
        connect_kwargs={
            "key_filename": str(host.key_file) if host.key_file else None,
            "allow_agent": host.key_file is None,
            "look_for_keys": host.key_file is None,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
        },
    )
    conn.client = strict_client(inv)
    return conn


def parallel(
    hosts: Sequence[Host],
    work: Callable[[Host], T],
    on_error: Callable[[str, RemoteError], T],
    workers: int = 16,
) -> dict[str, T]:
    """Run ``work`` for every host at once; a RemoteError for one host never stops the others: ``on_error``
    turns it into that host's result."""

    def guarded(h: Host) -> T:
        try:
            return work(h)
        except RemoteError as exc:
            return on_error(h.name, exc)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts)))) as pool:
        return dict(zip((h.name for h in hosts), pool.map(guarded, hosts), strict=True))


_SSH_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')


def _ssh_value(value: str, *, tokens: bool = False) -> str:
    """One ssh_config argument, double-quoted. A quote, backslash or control character (a newline would start
    a new directive, e.g. a ProxyCommand that runs on the controller) is refused, never written; ``tokens``
    doubles '%' for the directives where ssh expands %-tokens."""
    if not value or _SSH_UNSAFE.search(value):
        raise InventoryError(f"refusing to write {value!r} into an ssh_config", hint="fix the inventory value")
    return '"' + (value.replace("%", "%%") if tokens else value) + '"'


def write_ssh_config(inv: Inventory, path: Path, home: Path) -> Path:
    """An OpenSSH client config for tools that shell out to ssh (testinfra): the same strictness as ours, with
    connection reuse so many checks on one host cost one handshake. The masters are the ones Ansible runs of the
    state home ``home`` open (:mod:`orchestrator.sshmux`), so checks after a run ride its connection."""
    masters = sshmux.ensure_masters_dir(home, inv.known_hosts)
    cp = _ssh_value(str(masters), tokens=True)[:-1] + "/" + sshmux.SOCKET_NAME + '"'
    lines: list[str] = []
    for h in inv.hosts:
        lines += [
            f"Host {_ssh_value(h.name)}",
            f"  HostName {_ssh_value(h.address)}",
            f"  Port {h.port:d}",
            f"  User {_ssh_value(h.user)}",
            *(
                [f"  IdentityFile {_ssh_value(str(h.key_file), tokens=True)}", "  IdentitiesOnly yes"]
                if h.key_file
                else []
            ),
            f"  UserKnownHostsFile {_ssh_value(str(inv.known_hosts), tokens=True)}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            # A host that dies mid-audit is noticed in 45 s instead of hanging the audit.
            "  ServerAliveInterval 15",
            "  ServerAliveCountMax 3",
            "  LogLevel ERROR",
            "  ControlMaster auto",
            f"  ControlPath {cp}",
            "  ControlPersist 60s",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


class CommandTimeout(RemoteError):
    """Raised when one command of a testinfra host did not finish within its bound (its ssh was killed)."""


def testinfra_host(name: str, ssh_config: Path, command_timeout: float, **kwargs: Any) -> Any:
    """A testinfra host over OpenSSH (``write_ssh_config``) whose every command is bounded.

    testinfra waits for ssh without a limit, and ServerAlive only notices a dead host, not a command that hangs on
    a live one: past ``command_timeout`` the command's ssh (in a session of its own) is killed and
    :class:`CommandTimeout` raised, so the caller reports the host instead of waiting forever."""
    import subprocess

    import testinfra

    target = testinfra.get_host(f"ssh://{name}", ssh_config=str(ssh_config), **kwargs)
    backend = target.backend

    def run_local(command: str, *args: str) -> Any:
        cmd = backend.encode(backend.quote(command, *args))
        p = subprocess.Popen(  # noqa: S602 - testinfra's own way: one shell line of quoted arguments
            cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        try:
            stdout, stderr = p.communicate(timeout=command_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            # Not communicate(): a multiplexed ssh hands its pipes to the connection master, which keeps them open
            # for as long as the hung command runs on the host.
            for pipe in (p.stdout, p.stderr):
                if pipe is not None:
                    pipe.close()
            p.wait(timeout=10)
            raise CommandTimeout(f"{name}: a command did not finish within {command_timeout:.0f}s") from None
        return backend.result(p.returncode, cmd, stdout, stderr)

    backend.run_local = run_local
    return target
