"""The auditor's story on the session's provisioned lab client, through the real CLI: a fresh client audits
compliant and its bundle verifies; drift on one host fails exactly the checks it should, on exactly that host;
an unreachable host is an error while the others are audited; a tampered or unsigned bundle is rejected; a
waiver suppresses exactly its check on its host until it expires; the HTML report renders in headless Chromium.

Every test leaves the hosts as it found them (the stack and defence tests share them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger
from orchestrator.releases import signing

from .conftest import Provisioned

pytestmark = pytest.mark.lab

DRIFT_HOST = "t-2"
DRIFT_CHECKS = {
    "baseline.sshd-hardening",  # PasswordAuthentication yes in the drop-in
    "firewall.invalid-drop",  # the "ct state invalid drop" rule deleted from the live ruleset
    "agent.config",  # agent.json made world-readable
    "agent.service",  # the agent stopped: not running, so also ...
    "agent.health",  # ... no health answer, and ...
    "agent.sandbox",  # ... no process to inspect
    "converge.site-check",  # and the site playbook would change the drop-in, agent.json and the service
}
GREEN, ORANGE = (0x1A, 0x7F, 0x37), (0xC2, 0x41, 0x0C)  # the report's compliant and drift banners


def cli(prov: Provisioned, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
    settings = prov.env.settings
    environ = {
        **os.environ,
        "SENTRY_HOME": str(settings.home),
        "SENTRY_INVENTORIES": str(settings.inventories),
        "SENTRY_ACTOR": "Ada Auditor",
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=900,
        check=False,
    )
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def host_ssh(prov: Provisioned, name: str, command: str) -> str:
    host = next(h for h in prov.env.hosts() if h.name == name)
    return prov.env.ssh(host, command)


def report(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "report.json").read_text())


def statuses(data: dict[str, Any]) -> dict[str, str]:
    return {name: h["status"] for name, h in data["hosts"].items()}


def failed_checks(data: dict[str, Any], host: str) -> set[str]:
    return {c["id"] for c in data["hosts"][host]["checks"] if c["status"] == "fail"}


def bundle_of(proc: subprocess.CompletedProcess[str]) -> Path:
    line = next(line for line in proc.stdout.splitlines() if line.startswith("evidence bundle: "))
    return Path(line.split(": ", 1)[1])


@pytest.fixture(scope="module")
def auditable(provisioned: Provisioned) -> Provisioned:
    """The provisioned client, with Sentry's signing key in its home (bundles are signed with it)."""
    home = provisioned.env.settings.home
    if not signing.private_key_path(home).exists():
        signing.keygen(home)
    return provisioned


@pytest.fixture(scope="module")
def compliant_bundle(auditable: Provisioned, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evidence")
    proc = cli(auditable, "audit", "--client", auditable.client, "--out", str(out), check=0)
    return bundle_of(proc)


def test_fresh_client_audits_compliant_and_its_bundle_verifies(auditable: Provisioned, compliant_bundle: Path) -> None:
    data = report(compliant_bundle)
    assert data["summary"]["result"] == "compliant"
    assert statuses(data) == {name: "compliant" for name in auditable.tiers}
    assert data["converge_checked"] and data["auditor"] == "Ada Auditor"
    with Ledger.open(auditable.env.settings.db_url, auditable.env.settings.home) as ledger:
        checked = ledger.runs(client=auditable.client, kind="audit-check", limit=1)
    assert checked and checked[0].status == "succeeded", "the check-mode run is recorded like every playbook run"
    for name, tier in auditable.tiers.items():
        checks = {c["id"]: c["status"] for c in data["hosts"][name]["checks"]}
        assert checks["converge.site-check"] == "pass", name
        assert data["hosts"][name]["expected"]["tier"] == tier
        # ids checks apply with the tier: essentials has no fail2ban
        assert checks["ids.fail2ban"] == ("not-applicable" if tier == "essentials" else "pass")
    names = {p.relative_to(compliant_bundle).as_posix() for p in compliant_bundle.rglob("*") if p.is_file()}
    assert {"report.json", "report.html", "junit.xml", "ledger.json", "MANIFEST.json", "MANIFEST.sig"} <= names
    assert {"inventory/hosts.yml", "inventory/known_hosts", "inventory/group_vars/all.yml"} <= names
    assert not [n for n in names if "vault" in n], "secrets never go into a bundle"

    suites = ET.parse(compliant_bundle / "junit.xml").getroot()
    assert sorted(s.get("name") for s in suites) == [f"{auditable.client}.{n}" for n in sorted(auditable.tiers)]
    assert all(s.get("failures") == "0" and s.get("errors") == "0" for s in suites)

    ok = cli(auditable, "audit", "verify", str(compliant_bundle), check=0)
    assert "intact" in ok.stdout
    manifest_sha = hashlib.sha256((compliant_bundle / "MANIFEST.json").read_bytes()).hexdigest()
    settings = auditable.env.settings
    with Ledger.open(settings.db_url, settings.home) as ledger:
        record = next(a for a in ledger.audits(auditable.client) if a.bundle_path == str(compliant_bundle))
        assert (record.result, record.auditor, record.bundle_sha256) == ("compliant", "Ada Auditor", manifest_sha)
        excerpt = json.loads((compliant_bundle / "ledger.json").read_text())
        assert {r["host"]: r["release_version"] for r in excerpt["host_releases"]} == {
            r.host: r.release_version for r in ledger.host_releases(auditable.client)
        }
    listed = cli(auditable, "audit", "list", "--client", auditable.client, "--json", check=0)
    assert record.uid in {a["uid"] for a in json.loads(listed.stdout)}


@pytest.fixture
def drifted(auditable: Provisioned) -> Iterator[str]:
    """Four kinds of drift on one host: a stopped agent, a loosened sshd, a deleted firewall rule, a file mode."""
    host_ssh(
        auditable,
        DRIFT_HOST,
        "set -e; systemctl stop sentry-agent; chmod 0644 /etc/sentry/agent.json; "
        "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/I' /etc/ssh/sshd_config.d/50-sentry.conf; "
        "grep -qi '^PasswordAuthentication yes' /etc/ssh/sshd_config.d/50-sentry.conf; "
        "handle=$(nft -a list chain inet sentry input | sed -n 's/.*ct state invalid .*drop # handle //p'); "
        'test -n "$handle"; nft delete rule inet sentry input handle "$handle"',
    )
    try:
        yield DRIFT_HOST
    finally:
        host_ssh(
            auditable,
            DRIFT_HOST,
            "sed -i 's/^PasswordAuthentication yes/PasswordAuthentication no/I' /etc/ssh/sshd_config.d/50-sentry.conf; "
            "chmod 0600 /etc/sentry/agent.json; systemctl reload sentry-firewall; systemctl start sentry-agent",
        )


def test_drift_fails_exactly_those_checks_on_exactly_that_host(
    auditable: Provisioned, drifted: str, tmp_path: Path
) -> None:
    proc = cli(auditable, "audit", "--client", auditable.client, "--out", str(tmp_path), check=1)
    bundle = bundle_of(proc)
    data = report(bundle)
    assert statuses(data) == {name: ("drift" if name == drifted else "compliant") for name in auditable.tiers}
    assert failed_checks(data, drifted) == DRIFT_CHECKS
    for name in auditable.tiers:
        if name != drifted:
            assert failed_checks(data, name) == set(), name

    by_id = {c["id"]: c for c in data["hosts"][drifted]["checks"]}
    assert by_id["baseline.sshd-hardening"]["expected"] == "passwordauthentication=no"
    assert by_id["baseline.sshd-hardening"]["found"] == "passwordauthentication=yes"
    assert (by_id["agent.config"]["expected"], by_id["agent.config"]["found"]) == ("mode=0600", "mode=0644")
    assert by_id["firewall.invalid-drop"]["found"] == "ct state invalid drop=no"
    changes = data["hosts"][drifted]["changes"]
    dropin = next(c for c in changes if "sshd" in c["task"].lower() and c["diff"])
    assert "+PasswordAuthentication no" in dropin["diff"] or "PasswordAuthentication no" in dropin["diff"]
    assert "passwordauthentication=yes" in proc.stdout  # the summary says expected vs found too

    html = (bundle / "report.html").read_text()
    assert "passwordauthentication=no" in html and "passwordauthentication=yes" in html
    assert 'class="summary drift"' in html
    suite = next(s for s in ET.parse(bundle / "junit.xml").getroot() if s.get("name", "").endswith(drifted))
    assert int(suite.get("failures", "0")) == len(DRIFT_CHECKS)

    shot = screenshot(bundle / "report.html", tmp_path / "drift.png")
    assert_renders_summary(shot, ORANGE)


def test_unreachable_host_is_an_error_and_the_others_are_audited(auditable: Provisioned, tmp_path: Path) -> None:
    blocked = next(h for h in auditable.env.hosts() if h.name == "t-3")
    table = "sentry_test_block"
    nft = ["ip", "netns", "exec", blocked.netns, "nft"]
    subprocess.run(
        [*nft, f"add table inet {table}; add chain inet {table} in {{ type filter hook input priority -10; }}; "
         f"add rule inet {table} in tcp dport 22 reject with tcp reset"],
        check=True,
    )  # fmt: skip
    try:
        proc = cli(
            auditable, "audit", "--client", auditable.client, "--out", str(tmp_path), "--no-converge-check", check=4
        )
    finally:
        subprocess.run([*nft, f"delete table inet {table}"], check=True)
    data = report(bundle_of(proc))
    assert statuses(data) == {"t-1": "compliant", "t-2": "compliant", "t-3": "error"}
    assert "unreachable" in data["hosts"]["t-3"]["error"]
    assert data["hosts"]["t-3"]["checks"] == []
    assert data["summary"]["result"] == "error"


def test_tampered_or_unsigned_bundles_are_rejected(
    auditable: Provisioned, compliant_bundle: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(compliant_bundle, edited)
    html = edited / "report.html"
    html.write_text(html.read_text().replace("compliant", "compliant (trust me)", 1))
    (edited / "ledger.json").unlink()
    (edited / "extra.txt").write_text("slipped in\n")
    bad = cli(auditable, "audit", "verify", str(edited), check=1)
    assert "altered: report.html" in bad.stderr
    assert "missing: ledger.json" in bad.stderr
    assert "added: extra.txt" in bad.stderr
    assert "junit.xml" not in bad.stderr, "only what was changed is named"

    forged = tmp_path / "forged"
    shutil.copytree(compliant_bundle, forged)
    manifest = json.loads((forged / "MANIFEST.json").read_text())
    manifest["result"] = "compliant!"
    (forged / "MANIFEST.json").write_text(json.dumps(manifest))
    rejected = cli(auditable, "audit", "verify", str(forged), check=1)
    assert "signature does not match" in rejected.stderr

    unsigned = tmp_path / "unsigned"
    shutil.copytree(compliant_bundle, unsigned)
    (unsigned / "MANIFEST.sig").unlink()
    stripped = cli(auditable, "audit", "verify", str(unsigned), check=1)
    assert "not signed" in stripped.stderr
    assert "Traceback" not in stripped.stderr + rejected.stderr + bad.stderr


def test_waiver_suppresses_exactly_its_check_on_its_host_until_it_expires(
    auditable: Provisioned, tmp_path: Path
) -> None:
    dropin = "/etc/ssh/sshd_config.d/50-sentry.conf"
    today = dt.datetime.now(dt.UTC).date()
    waivers = tmp_path / "waivers.yml"

    def write(expires: dt.date) -> None:
        waivers.write_text(
            "waivers:\n"
            "  - check: baseline.sshd-dropin\n"
            "    host: t-1\n"
            "    justification: vendor tooling needs to read the drop-in, ticket OPS-42\n"
            "    approved_by: Ada Auditor\n"
            f"    expires: {expires.isoformat()}\n"
        )

    write(today)  # valid through its expiry day
    for name in ("t-1", "t-3"):
        host_ssh(auditable, name, f"chmod 0600 {dropin}")
    try:
        args = ["audit", "--client", auditable.client, "--out", str(tmp_path), "--no-converge-check"]
        proc = cli(auditable, *args, "--waivers", str(waivers), check=1)
        data = report(bundle_of(proc))
        t1 = {c["id"]: c for c in data["hosts"]["t-1"]["checks"]}
        assert t1["baseline.sshd-dropin"]["status"] == "waived"
        assert t1["baseline.sshd-dropin"]["waiver"]["justification"].endswith("OPS-42")
        assert [c for c in t1.values() if c["status"] == "fail"] == []
        assert statuses(data) == {"t-1": "compliant", "t-2": "compliant", "t-3": "drift"}
        assert failed_checks(data, "t-3") == {"baseline.sshd-dropin"}, "the waiver covers t-1 only"

        write(today - dt.timedelta(days=1))
        expired = cli(auditable, *args, "--waivers", str(waivers), check=4)
        assert "expired on" in expired.stderr and "renew it" in expired.stderr
        assert "checking" not in expired.stderr, "rejected before any host is contacted"
        assert len(expired.stderr.strip().splitlines()) <= 2
    finally:
        for name in ("t-1", "t-3"):
            host_ssh(auditable, name, f"chmod 0644 {dropin}")


def test_html_report_renders_its_summary_in_headless_chromium(compliant_bundle: Path, tmp_path: Path) -> None:
    shot = screenshot(compliant_bundle / "report.html", tmp_path / "compliant.png")
    assert_renders_summary(shot, GREEN)


# ----------------------------------------------------------------------------------------- the screenshot


def screenshot(page: Path, out: Path) -> Path:
    """Headless Chromium in a network namespace of its own (no network at all: the report must stand alone)."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (scripts/setup --tests installs it)"
    subprocess.run(
        ["unshare", "--net", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={out.parent / 'chromium-profile'}", "--window-size=1280,900",
         f"--screenshot={out}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert out.exists() and out.stat().st_size > 0
    return out


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB/RGBA PNG (what Chromium writes), without extra packages."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    rgb = [b"".join(row[x * channels : x * channels + 3] for x in range(width)) for row in rows]
    return width, height, rgb


def assert_renders_summary(shot: Path, banner: tuple[int, int, int]) -> None:
    """The page is not blank, and the summary banner (its colour says the verdict) fills a real area near the top."""
    width, height, rows = read_png(shot)
    assert (width, height) == (1280, 900)
    top = rows[: height // 3]
    colours = Counter(row[x * 3 : x * 3 + 3] for row in top[::4] for x in range(0, width, 4))
    assert len(colours) > 20, "a blank or single-colour page"
    banner_pixels = colours[bytes(banner)]
    assert banner_pixels > (width // 4) * (len(top) // 4) * 0.15, f"summary banner {banner} not rendered"
