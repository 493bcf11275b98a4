"""The checks' pure parts: the registry, findings over named values, and the expected state from an inventory."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.audit.checks import compare, registry
from orchestrator.audit.expected import expected_state
from orchestrator.audit.service import all_check_ids
from orchestrator.inventory import Host, Inventory


def test_every_check_has_a_stable_id_a_description_and_a_known_component() -> None:
    checks = registry()
    assert len(checks) >= 15
    for check in checks:
        assert re.fullmatch(r"(baseline|firewall|ids|agent)\.[a-z0-9-]+", check.id), check.id
        assert check.concern == check.id.split(".")[0]
        assert check.component in {"baseline", "firewall", "ids", "agent"}
        assert check.description.endswith(".") and "\n" not in check.description
    assert {c.concern for c in checks} == {"baseline", "firewall", "ids", "agent"}
    ids = all_check_ids()
    assert len(ids) == len(set(ids)) and "converge.site-check" in ids


def test_compare_shows_only_what_differs() -> None:
    finding = compare(
        {"mode": "0600", "owner": "sentry:sentry", "on": True}, {"mode": "0644", "owner": "sentry:sentry", "on": True}
    )
    assert not finding.ok
    assert (finding.expected, finding.found) == ("mode=0600", "mode=0644")
    same = compare({"nets": ["10.0.0.0/8"], "on": True}, {"nets": ["10.0.0.0/8"], "on": True})
    assert same.ok and same.expected == same.found == "nets=[10.0.0.0/8], on=yes"
    missing = compare({"version": "1.2.3"}, {})
    assert not missing.ok and missing.found == "version=(none)"


def test_expected_state_merges_host_vars_over_group_vars_and_reads_the_tier(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        "sentry_tier: essentials\nsentry_mgmt_networks: [192.0.2.0/24]\nsentry_game_ports_tcp: [7777]\n"
        "sentry_game_ports_udp: []\nsentry_support_contact: Ana <ana@example.com>\n"
    )
    (tmp_path / "host_vars" / "g2.yml").write_text("sentry_tier: enterprise\n")
    inv = Inventory("acme", tmp_path, (Host("g1", "192.0.2.10"), Host("g2", "192.0.2.11")), {"tier": "essentials"})
    expected = expected_state(inv, {})
    assert expected["g1"].tier == "essentials" and "ids" not in expected["g1"].components
    assert expected["g1"].fail2ban_maxretry is None
    assert expected["g2"].tier == "enterprise" and "ids" in expected["g2"].components
    assert expected["g2"].support_hours == "24/7" and expected["g2"].fail2ban_maxretry is not None
    assert expected["g1"].mgmt_networks == ("192.0.2.0/24",) and expected["g1"].game_ports_tcp == (7777,)
    assert expected["g1"].release is None, "the ledger recorded nothing"
