"""Machine-wide subnet claims, so labs started at the same moment never share a /24.

A lab claims its subnet before it waits on anything (the image lock, the boot): one claim file per subnet in
``CLAIMS_DIR``, created with O_EXCL while holding one machine-wide lock, after checking that no other claim
overlaps it and that no address or route on the machine does. The claim lives as long as the lab: ``lab down``
releases it. A claim is stale, and taken back, when its lab is gone: the process that made it has exited and the
lab directory it names no longer records that subnet (a crashed ``lab up``, a deleted home).

The claims live under /run, not in a lab cache, because two labs may use different caches but always share the
machine's addresses.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from . import net, proc

log = logging.getLogger(__name__)

CLAIMS_DIR = Path("/run/sentryctl-lab/subnets")


@dataclass(frozen=True)
class Claim:
    subnet: ipaddress.IPv4Network
    lab: str
    lab_dir: str
    owner: proc.ProcRef | None  # the process that made the claim; the lab outlives it

    @property
    def file_name(self) -> str:
        return claim_file_name(self.subnet)


def claim_file_name(subnet: ipaddress.IPv4Network) -> str:
    return f"{subnet.network_address}_{subnet.prefixlen}.json"


@contextmanager
def _locked(claims_dir: Path) -> Iterator[None]:
    claims_dir.mkdir(parents=True, exist_ok=True)
    # flock locks an open file description: separate opens exclude each other across threads and processes.
    with (claims_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> Claim | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Claim(
            subnet=ipaddress.IPv4Network(data["subnet"]),
            lab=str(data["lab"]),
            lab_dir=str(data["lab_dir"]),
            owner=proc.ProcRef.from_json(data.get("owner")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # torn or foreign: treated as no claim, and removed as stale


def _lab_records(lab_dir: str, subnet: ipaddress.IPv4Network) -> bool:
    try:
        data = json.loads((Path(lab_dir) / "state.json").read_text(encoding="utf-8"))
        return ipaddress.IPv4Network(data["subnet"]) == subnet
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _is_live(claim: Claim) -> bool:
    return proc.alive(claim.owner) or _lab_records(claim.lab_dir, claim.subnet)


def _live_claims(claims_dir: Path) -> list[Claim]:
    """Every live claim; stale ones (their lab is gone) are removed on the way."""
    live: list[Claim] = []
    for path in sorted(claims_dir.glob("*.json")):
        claim = _read(path)
        if claim is not None and _is_live(claim):
            live.append(claim)
        else:
            log.info("removing stale subnet claim %s", path.name)
            path.unlink(missing_ok=True)
    return live


def _refuse_if_taken(subnet: ipaddress.IPv4Network, lab_dir: str, claims: list[Claim]) -> None:
    for other in claims:
        if other.lab_dir != lab_dir and other.subnet.overlaps(subnet):
            raise LabError(
                f"address range {subnet} is claimed by lab {other.lab} ({other.subnet}, {other.lab_dir})",
                hint=f"pick another with --subnet, or 'sentryctl lab down --name {other.lab}' first",
            )


def claim(
    lab: str,
    lab_dir: Path,
    subnet: ipaddress.IPv4Network | None = None,
    *,
    claims_dir: Path = CLAIMS_DIR,
    pool: ipaddress.IPv4Network | None = None,
) -> ipaddress.IPv4Network:
    """Claim ``subnet`` (or the first free /24 of the pool) for the lab in ``lab_dir``; return it.

    Claiming again what this lab already holds is a no-op, so ``lab up`` on a running lab just confirms it.
    """
    lab_key = str(lab_dir.resolve())
    with _locked(claims_dir):
        claims = _live_claims(claims_dir)
        own = [c for c in claims if c.lab_dir == lab_key]
        if subnet is None and own:
            return own[0].subnet
        if subnet is not None and any(c.subnet == subnet for c in own):
            return subnet
        if subnet is not None:
            _refuse_if_taken(subnet, lab_key, claims)
            net.check_free(subnet)
            chosen = subnet
        else:
            chosen = _pick(claims, pool or net.AUTO_POOL)
        record = {
            "subnet": str(chosen),
            "lab": lab,
            "lab_dir": lab_key,
            "owner": _self_ref(),
            "claimed_at": time.time(),
        }
        try:
            fd = os.open(claims_dir / claim_file_name(chosen), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError as exc:  # only a claimer that ignores the lock gets here
            raise LabError(f"address range {chosen} was claimed at the same moment", hint="run 'lab up' again") from exc
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        return chosen


def _pick(claims: list[Claim], pool: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    used = net.used_networks() + [c.subnet for c in claims]
    for candidate in pool.subnets(new_prefix=24):
        if not any(candidate.overlaps(n) for n in used):
            return candidate
    raise LabError(f"no free /24 left in {pool}", hint="pass --subnet with a free private /24")


def _self_ref() -> dict[str, int] | None:
    ticks = proc.start_ticks(os.getpid())
    return None if ticks is None else {"pid": os.getpid(), "start_ticks": ticks}


def release(lab_dir: Path, *, claims_dir: Path = CLAIMS_DIR) -> None:
    """Drop every claim of the lab in ``lab_dir`` (``lab down``, or a ``lab up`` that failed before it started)."""
    if not claims_dir.is_dir():
        return
    lab_key = str(lab_dir.resolve())
    with _locked(claims_dir):
        for path in claims_dir.glob("*.json"):
            found = _read(path)
            if found is not None and found.lab_dir == lab_key:
                path.unlink(missing_ok=True)


def held(claims_dir: Path = CLAIMS_DIR) -> list[Claim]:
    """The live claims on this machine (for tests and diagnostics)."""
    if not claims_dir.is_dir():
        return []
    with _locked(claims_dir):
        return _live_claims(claims_dir)
