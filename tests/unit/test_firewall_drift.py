"""The firewall's live-drift comparison (roles/sentry_firewall/files/sentry-firewall-drift.py): the order nft lists
declarations in is no drift (a set deleted and re-created live is listed last), the order of a chain's rules is."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "sentry_firewall" / "files" / "sentry-firewall-drift.py"


def drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sentry_firewall_drift", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHAIN = {"chain": {"family": "inet", "table": "sentry", "name": "input"}}
SET = {"set": {"family": "inet", "table": "sentry", "name": "banned_v4", "type": "ipv4_addr"}}


def rule(expr: str) -> dict[str, object]:
    return {"rule": {"family": "inet", "table": "sentry", "chain": "input", "expr": [expr]}}


def test_declaration_order_is_no_drift_but_rule_order_and_a_missing_rule_are() -> None:
    d = drift()
    want = [CHAIN, SET, rule("ct state established accept"), rule("drop")]
    assert d.canonical([SET, CHAIN, *want[2:]]) == d.canonical(want)
    assert d.canonical([CHAIN, SET, rule("drop"), rule("ct state established accept")]) != d.canonical(want)
    assert d.canonical(want[:3]) != d.canonical(want)


def test_ban_sets_without_the_interval_flag_are_drift() -> None:
    d = drift()
    old = {"set": {**SET["set"], "flags": ["timeout"]}}
    new = {"set": {**SET["set"], "flags": ["interval", "timeout"]}}
    assert d.canonical(d.normalise([CHAIN, old])) != d.canonical(d.normalise([CHAIN, new]))


LOADER = SCRIPT.with_name("sentry-firewall-load.py")
OLD = """table inet sentry {
  set banned_v4 { type ipv4_addr; flags timeout; }
  set banned_v6 { type ipv6_addr; flags timeout; }
  chain input { type filter hook input priority filter; policy accept; }
}
flush chain inet sentry input
table inet sentry {
  chain input {
    ip saddr @banned_v4 drop
    ip6 saddr @banned_v6 drop
  }
}
"""


def test_the_loader_turns_old_ban_sets_into_interval_sets_keeping_their_bans(tmp_path: Path) -> None:
    import shutil
    import subprocess

    import pytest

    if not (shutil.which("unshare") and Path("/usr/sbin/nft").exists()):
        pytest.skip("needs unshare and nft")
    old, new = tmp_path / "old.nft", tmp_path / "new.nft"
    old.write_text(OLD)
    new.write_text(OLD.replace("flags timeout;", "flags interval, timeout;"))
    script = (
        f"nft -f {old} && nft add element inet sentry banned_v4 '{{ 192.0.2.7 timeout 300s }}' && "
        f"python3 {LOADER} {new} inet sentry banned_v4 banned_v6 && nft -j list set inet sentry banned_v4"
    )
    proc = subprocess.run(
        ["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("no permission for a network namespace")
    assert proc.returncode == 0, proc.stderr
    import json

    (s,) = [i["set"] for i in json.loads(proc.stdout)["nftables"] if "set" in i]
    assert s["flags"] == ["interval", "timeout"]
    assert [e["elem"]["val"] for e in s["elem"]] == ["192.0.2.7"]
    assert 250 < s["elem"][0]["elem"]["timeout"] <= 300
