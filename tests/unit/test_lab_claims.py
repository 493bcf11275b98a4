"""Subnet claims: labs claiming at the same moment (separate processes) get distinct subnets; a claimed or
overlapping subnet is refused; a dead lab's claim is taken back. Uses a private claims folder, so it needs no
root and touches no other lab's claims; the machine's addresses are read with the real ``ip``."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
from pathlib import Path

import pytest

from orchestrator.errors import LabError
from orchestrator.lab import claims

POOL = ipaddress.IPv4Network("10.213.240.0/21")  # far from the pinned test subnets and the auto pool's start


def _claim_in_child(args: tuple[str, str, str, object]) -> str:
    name, lab_dir, claims_dir, start = args
    start.wait(10)  # type: ignore[attr-defined]
    return str(claims.claim(name, Path(lab_dir), claims_dir=Path(claims_dir), pool=POOL))


def test_labs_claiming_at_once_get_distinct_subnets(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        jobs = [(f"l{i}", str(tmp_path / f"lab{i}"), str(tmp_path / "claims"), start) for i in range(6)]
        with ctx.Pool(6) as pool:
            pending = pool.map_async(_claim_in_child, jobs)
            start.set()
            got = pending.get(timeout=60)
    assert len(set(got)) == 6, got
    # One claim file each (read as files: the claimers have exited, so held() would recover them as stale).
    files = sorted(json.loads(f.read_text())["subnet"] for f in (tmp_path / "claims").glob("*.json"))
    assert files == sorted(got)
    assert claims.held(tmp_path / "claims") == []


def test_claimed_and_overlapping_subnets_are_refused(tmp_path: Path) -> None:
    cdir = tmp_path / "claims"
    first = claims.claim("one", tmp_path / "one", ipaddress.IPv4Network("10.213.244.0/24"), claims_dir=cdir)
    # The lab's state records its subnet, so the claim stays live after this process is gone.
    (tmp_path / "one").mkdir()
    (tmp_path / "one/state.json").write_text(json.dumps({"subnet": str(first)}))
    with pytest.raises(LabError, match="claimed by lab one"):
        claims.claim("two", tmp_path / "two", ipaddress.IPv4Network("10.213.244.0/24"), claims_dir=cdir)
    with pytest.raises(LabError, match="claimed by lab one"):
        claims.claim("two", tmp_path / "two", ipaddress.IPv4Network("10.213.244.64/26"), claims_dir=cdir)
    # The same lab claiming again is a no-op; an auto-picked one skips the claimed /24.
    assert claims.claim("one", tmp_path / "one", first, claims_dir=cdir) == first
    assert claims.claim("two", tmp_path / "two", claims_dir=cdir, pool=ipaddress.IPv4Network("10.213.244.0/23")) == (
        ipaddress.IPv4Network("10.213.245.0/24")
    )


def test_an_address_on_the_machine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="in use on this machine"):
        claims.claim("lo", tmp_path / "lo", ipaddress.IPv4Network("127.0.0.0/24"), claims_dir=tmp_path / "c")


def test_a_dead_labs_claim_is_recovered_and_down_releases(tmp_path: Path) -> None:
    cdir = tmp_path / "claims"
    net = ipaddress.IPv4Network("10.213.246.0/24")
    claims.claim("gone", tmp_path / "gone", net, claims_dir=cdir)
    # A crashed 'lab up': its process is dead (a pid that is not running) and it never wrote its state.
    path = cdir / claims.claim_file_name(net)
    data = json.loads(path.read_text())
    data["owner"] = {"pid": 2**22 + 1, "start_ticks": 1}
    path.write_text(json.dumps(data))
    assert claims.claim("next", tmp_path / "next", net, claims_dir=cdir) == net
    claims.release(tmp_path / "next", claims_dir=cdir)
    assert claims.held(cdir) == []
