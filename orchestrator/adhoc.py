"""Ad-hoc commands on a client's hosts with Fabric, in parallel, strictly checked host keys."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paramiko

from . import remote
from .clients import ensure_client
from .errors import RemoteError
from .inventory import Host, Inventory
from .ledger import HostResult, Ledger
from .redact import redact

OUTPUT_LIMIT = 64 * 1024  # per stream and host, shown on screen
LEDGER_TAIL = 2048  # what the ledger keeps of each stream: enough to see what happened, not a log store


@dataclass(frozen=True)
class CommandOutcome:
    host: str
    rc: int | None  # None: the command never ran (connection failed)
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.error is not None:
            return "unreachable"
        return "ok" if self.rc == 0 else "failed"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


def run_on_host(inv: Inventory, host: Host, command: str, timeout: float) -> CommandOutcome:
    start = time.monotonic()
    conn = remote.fabric_connection(inv, host, timeout=min(timeout, remote.DEFAULT_TIMEOUT))
    try:
        conn.open()
    except (paramiko.SSHException, OSError, EOFError) as exc:  # Fabric passes paramiko's errors through
        conn.close()
        error = remote.classify(inv, host, exc, remote.DEFAULT_TIMEOUT)
        return CommandOutcome(host.name, None, error=str(error), seconds=time.monotonic() - start)
    try:
        began = time.monotonic()
        result = conn.run(command, hide=True, warn=True, timeout=timeout, in_stream=False)
        if result.exited == -1 and time.monotonic() - began >= timeout:
            # invoke's timer closed the channel, but its check for the timeout lost the race to the channel's
            # end (seen under load): the same timeout, reported the same way, never an exit code of -1.
            return CommandOutcome(
                host.name,
                None,
                error=f"CommandTimedOut: Command did not complete within {timeout:g} seconds!",
                seconds=time.monotonic() - start,
            )
        return CommandOutcome(
            host.name,
            int(result.exited),
            result.stdout[-OUTPUT_LIMIT:],
            result.stderr[-OUTPUT_LIMIT:],
            seconds=time.monotonic() - start,
        )
    except Exception as exc:  # invoke's CommandTimedOut and friends
        return CommandOutcome(
            host.name, None, error=f"{type(exc).__name__}: {exc}".splitlines()[0], seconds=time.monotonic() - start
        )
    finally:
        conn.close()


@dataclass(frozen=True)
class ExecResult:
    run_uid: str
    command: str
    outcomes: tuple[CommandOutcome, ...]

    @property
    def failed(self) -> list[str]:
        return [o.host for o in self.outcomes if o.status != "ok"]


def run_command(
    inv: Inventory,
    hosts: Sequence[Host],
    command: str,
    ledger: Ledger,
    timeout: float = 300.0,
    *,
    record_output: bool = True,
    secrets: Sequence[str] = (),
) -> ExecResult:
    """Run ``command`` everywhere at once; the ledger records who ran what, where, when, and each result.

    The ledger is hash-chained and copied into every evidence bundle, so what it keeps is redacted: every
    value in ``secrets`` (the client's vaulted secrets) is masked in the command and the output tails, and
    ``record_output=False`` keeps no output at all (exit codes and errors only)."""
    if not command.strip():
        raise RemoteError("no command given", hint="put the command after --, e.g. sentryctl exec -c acme -- uptime")
    remote.pinned(inv)  # no pins, no connections
    ensure_client(ledger, inv)
    recorded = redact(command, secrets)
    run = ledger.start_run("exec", inv.client, {"command": recorded, "hosts": [h.name for h in hosts]})
    try:
        results = remote.parallel(
            hosts,
            lambda h: run_on_host(inv, h, command, timeout),
            lambda name, exc: CommandOutcome(name, None, error=str(exc)),
        )
    except BaseException:
        ledger.finish_run(run.uid, "cancelled")
        raise
    outcomes = tuple(results.values())
    ledger.finish_run(
        run.uid,
        "succeeded" if all(o.status == "ok" for o in outcomes) else "failed",
        {
            o.host: HostResult(
                o.status,
                o.rc,
                _recorded(o, record_output, secrets),
            )
            for o in outcomes
        },
    )
    return ExecResult(run.uid, command, outcomes)


def _recorded(o: CommandOutcome, record_output: bool, secrets: Sequence[str]) -> dict[str, Any]:
    if not record_output:
        return {"output_recorded": False, "error": redact(o.error or "", secrets) or None}
    # Redacted before the tail is cut, so a secret straddling the cut is not half kept.
    return {
        "stdout_tail": redact(o.stdout, secrets)[-LEDGER_TAIL:],
        "stderr_tail": redact(o.stderr, secrets)[-LEDGER_TAIL:],
        "error": redact(o.error, secrets) if o.error else None,
    }
