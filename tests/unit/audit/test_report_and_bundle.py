"""Reports and bundles from a synthetic audit outcome: JUnit structure, HTML escaping, drift diffs, and a
signed bundle whose every alteration is named (real ed25519 keys in a temporary home)."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.audit import bundle, report
from orchestrator.audit.drift import render_diff
from orchestrator.audit.errors import BundleError
from orchestrator.audit.expected import Expected
from orchestrator.audit.records import AuditOutcome, Change, CheckResult, HostReport
from orchestrator.audit.waivers import Waiver
from orchestrator.releases import signing

WHEN = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def expected(host: str) -> Expected:
    return Expected(
        client="acme", host=host, tier="professional", components=frozenset({"baseline", "agent"}), release="1.0.0",
        mgmt_networks=("192.0.2.0/24",), game_ports_tcp=(7777,), game_ports_udp=(), support_contact="Ana",
        support_hours="Mon-Sat", heartbeat_interval_seconds=30,
    )  # fmt: skip


def outcome(tmp_path: Path) -> AuditOutcome:
    waiver = Waiver("baseline.banner", "g1", "vendor banner, ticket OPS-7", "Ada", dt.date(2026, 12, 1))
    hosts = {
        "g1": HostReport(
            "g1",
            "192.0.2.10",
            expected("g1"),
            (
                CheckResult("agent.service", "The agent runs.", "pass", "running=yes", "running=yes"),
                CheckResult("agent.config", "Config is 0600.", "fail", "mode=0600", "mode=<script>0644</script>"),
                CheckResult("baseline.banner", "Banner.", "waived", "client=named", "client=missing", waiver=waiver),
                CheckResult("ids.fail2ban", "fail2ban.", "not-applicable", found="tier essentials has no ids"),
            ),
            (Change("Write the agent configuration", "--- before\n+++ after\n-mode 0644\n+mode 0600"),),
        ),
        "g2": HostReport("g2", "192.0.2.11", expected("g2"), error="unreachable over SSH: Connection refused"),
    }
    return AuditOutcome("au-1", "acme", "professional", "Ada", WHEN, WHEN, hosts, tmp_path, "", True)


def test_outcome_status_and_exit_code(tmp_path: Path) -> None:
    result = outcome(tmp_path)
    assert (result.hosts["g1"].status, result.hosts["g2"].status) == ("drift", "error")
    assert (result.status, result.exit_code) == ("error", 4)
    summary = report.summary(result)
    assert (summary["checks_failed"], summary["checks_waived"], summary["checks_not_applicable"]) == (1, 1, 1)


def test_junit_has_a_suite_per_host_with_failures_skips_and_errors(tmp_path: Path) -> None:
    root = ET.fromstring(report.junit_xml(outcome(tmp_path)))
    suites = {s.get("name"): s for s in root}
    g1, g2 = suites["acme.g1"], suites["acme.g2"]
    assert (g1.get("failures"), g1.get("skipped"), g1.get("errors")) == ("1", "2", "0")
    failure = g1.find("testcase[@name='agent.config']/failure")
    assert failure is not None and "expected mode=0600; found mode=<script>0644</script>" in failure.get("message", "")
    skipped = g1.find("testcase[@name='baseline.banner']/skipped")
    assert skipped is not None and "waived by Ada until 2026-12-01" in skipped.get("message", "")
    error = g2.find("testcase[@name='connection']/error")
    assert error is not None and "Connection refused" in error.get("message", "")


def test_html_escapes_what_hosts_say_and_shows_the_verdict(tmp_path: Path) -> None:
    html = report.report_html(outcome(tmp_path))
    assert "<script>0644" not in html and "&lt;script&gt;0644" in html
    assert 'class="summary error"' in html
    assert "Write the agent configuration" in html and "+mode 0600" in html
    assert "waived by Ada until 2026-12-01" in html
    assert "http://" not in html and "https://" not in html, "the report stands alone"


def test_render_diff_handles_ansible_shapes() -> None:
    text = render_diff({"before": "a\nb\n", "after": "a\nc\n", "before_header": "/etc/x", "after_header": "/etc/x"})
    assert "-b" in text and "+c" in text and "--- /etc/x" in text
    assert render_diff([{"prepared": "state: stopped -> started"}]) == "state: stopped -> started"
    assert "mode" in render_diff({"before": {"mode": "0644"}, "after": {"mode": "0600"}})
    assert render_diff(None) == ""
    long = render_diff({"before": "", "after": "\n".join(str(i) for i in range(500))})
    assert long.splitlines()[-1].startswith("... (") and len(long.splitlines()) == 201


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    signing.keygen(home)
    root = tmp_path / "bundle"
    (root / "inventory").mkdir(parents=True)
    (root / "report.json").write_text("{}\n")
    (root / "inventory" / "hosts.yml").write_text("all: {}\n")
    digest = bundle.seal(root, home, {"audit": "au-1", "client": "acme"})
    assert len(digest) == 64
    return root, signing.public_key_path(home)


def test_sealed_bundle_verifies(sealed: tuple[Path, Path]) -> None:
    root, key = sealed
    check = bundle.verify(root, key)
    assert check.ok and check.files == 2
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"report.json", "inventory/hosts.yml"}
    assert manifest["signed_by"].startswith("ed25519:")


def test_every_alteration_is_named(sealed: tuple[Path, Path]) -> None:
    root, key = sealed
    (root / "report.json").write_text('{"result": "compliant"}\n')
    (root / "inventory" / "hosts.yml").unlink()
    (root / "notes.txt").write_text("x")
    check = bundle.verify(root, key)
    assert check.problems() == [
        "altered: report.json (its sha256 differs from the signed manifest)",
        "missing: inventory/hosts.yml (listed in the signed manifest)",
        "added: notes.txt (not in the signed manifest)",
    ]


def test_unsigned_forged_or_foreign_bundles_raise(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    root, key = sealed
    other = tmp_path / "other"
    signing.keygen(other)
    with pytest.raises(BundleError, match="signature does not match"):
        bundle.verify(root, signing.public_key_path(other))
    (root / "MANIFEST.json").write_text((root / "MANIFEST.json").read_text().replace("acme", "evil"))
    with pytest.raises(BundleError, match="signature does not match"):
        bundle.verify(root, key)
    (root / "MANIFEST.sig").unlink()
    with pytest.raises(BundleError, match="not signed"):
        bundle.verify(root, key)
    with pytest.raises(BundleError, match="not a folder"):
        bundle.verify(tmp_path / "nowhere", key)


def test_the_report_of_a_failed_check_run_keeps_every_change_and_never_says_nothing(tmp_path: Path) -> None:
    """Every change found before the failure reaches the evidence, diffs included, and the HTML never says
    "nothing" for a host whose check-mode run failed."""
    from orchestrator.audit.drift import CheckRun
    from orchestrator.audit.service import _with_converge

    changes = tuple(Change(f"Task {i}", f"--- before\n+++ after\n+line {i}") for i in range(12))
    host = HostReport("g1", "192.0.2.1", expected("g1"))
    failed = _with_converge(host, CheckRun(changes, "check-mode run failed: task 'Check sshd' failed: boom"), {})
    assert failed.status == "drift" and failed.changes == changes and failed.converge_failure
    site = failed.checks[-1]
    assert "Check sshd" in site.found and "12 change(s) found before it" in site.found
    clean = _with_converge(HostReport("g2", "192.0.2.2", expected("g2")), CheckRun(), {})
    hosts = {"g1": failed, "g2": clean}
    outcome = AuditOutcome("au-2", "acme", "professional", "Ada", WHEN, WHEN, hosts, tmp_path, "", True)
    html = report.report_html(outcome)
    start, end = html.index('id="host-g1"'), html.index('id="host-g2"')
    g1 = html[start:end] if start < end else html[start:]
    assert "Could not tell everything" in g1 and "+line 11" in g1 and ">nothing<" not in g1
    assert json.dumps(report.report_json(outcome)).count("+line") == 12
