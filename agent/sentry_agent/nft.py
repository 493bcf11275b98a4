"""The one way the agent runs nft: an argument list (never a shell), an optional script on stdin, a timeout, and a
one-line error naming what it was doing. Bans (:mod:`.ban`), the heartbeat's firewall figures (:mod:`.firewall`)
and a pack's blocklist (:mod:`.blocklist`) all go through :func:`run_nft`."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["NftError", "run_nft"]


class NftError(Exception):
    """nft could not run, timed out or refused; the message is one line."""


def run_nft(binary: Path, args: Sequence[str], *, timeout: float, what: str, script: str | None = None) -> bytes:
    """Run ``binary args...`` (``what``: e.g. "banning 203.0.113.7", for the message); its standard output."""
    try:
        proc = subprocess.run(
            [str(binary), *args],
            input=script.encode() if script is not None else None,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NftError(f"nft timed out after {timeout:g}s {what}") from None
    except OSError as exc:
        raise NftError(f"cannot run {binary}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        detail = " ".join((proc.stderr or proc.stdout or b"").decode(errors="replace").split())[:300]
        raise NftError(f"nft exited {proc.returncode} {what}: {detail or 'no output'}")
    return bytes(proc.stdout)
