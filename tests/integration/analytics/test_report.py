"""``sentryctl report`` end to end, as a person runs it (the real CLI in a subprocess), over rows stored through
Ledger.store_batch on SQLite and PostgreSQL: a self-contained HTML report with drawn charts, JSON and CSV of
every figure, signed and verifiable like an audit evidence bundle; bad periods exit 2; an empty client is a
report that says so."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger

from .conftest import ATTACKER
from .test_figures import RIVAL_IP, seed

SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")


def run(ledger: Ledger, home: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SENTRY_HOME": str(home), "SENTRY_DB_URL": ledger_url(ledger), "COLUMNS": "200"}
    done = subprocess.run([SENTRYCTL, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
    return done


def ledger_url(ledger: Ledger) -> str:
    return ledger._url.render_as_string(hide_password=False)  # the test's own database, password included


@pytest.fixture
def home(analytics_ledger: Ledger, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    run(analytics_ledger, home, "release", "keygen")
    return home


def test_report_is_signed_self_contained_and_complete(analytics_ledger: Ledger, home: Path, tmp_path: Path) -> None:
    seed(analytics_ledger)
    out = tmp_path / "acme-2026-11"
    done = run(analytics_ledger, home, "report", "--client", "acme", "--period", "2026-11", "--out", str(out), "--json")
    doc = json.loads(done.stdout)
    assert doc["summary"]["alerts"] == 5 and doc["report"] == str(out)
    html = (out / "report.html").read_text()
    # Self-contained: no script, nothing loaded from elsewhere (the only URL is the SVG namespace).
    assert "<script" not in html.lower()
    assert set(re.findall(r"https?://[^\s\"']+", html)) <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"\b(src|href)=\"(?!#)", html), "the report links to something"
    assert ATTACKER in html and RIVAL_IP not in html
    assert re.search(r'<rect class="bar"[^>]*data-value="3"', html), "the alerts chart has no bar for the 3rd"
    figures = json.loads((out / "figures.json").read_text())
    assert figures["top_sources"][0]["ip"] == ATTACKER and figures["inputs"]["telemetry_alerts"] == 5
    names = sorted(p.name for p in (out / "csv").iterdir())
    assert names == sorted(
        f"{n}.csv"
        for n in (
            "alerts", "top_sources", "bans", "dropped", "uptime", "releases", "rollouts", "drift", "incidents",
            "time_to_ban",
        )
    )  # fmt: skip
    rows = list(csv.DictReader((out / "csv" / "dropped.csv").open()))
    assert sum(int(r["packets"]) for r in rows) == 120
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["format"] == "sentry-analytics-report/1" and "report.html" in manifest["files"]
    assert manifest["inputs"]["chain_head"] == figures["inputs"]["chain_head"]
    verified = run(analytics_ledger, home, "report", "verify", str(out), "--json")
    assert json.loads(verified.stdout)["ok"] is True
    event = [e for e in analytics_ledger.events("acme") if e.kind == "analytics.report"]
    assert len(event) == 1 and event[0].payload["manifest_sha256"] == json.loads(verified.stdout)["manifest_sha256"]


def test_tampered_report_fails_verification(analytics_ledger: Ledger, home: Path, tmp_path: Path) -> None:
    seed(analytics_ledger)
    out = tmp_path / "r"
    run(analytics_ledger, home, "report", "-c", "acme", "-p", "2026-11", "--out", str(out))
    path = out / "csv" / "top_sources.csv"
    path.write_text(path.read_text().replace(ATTACKER, "10.9.9.9"))
    done = run(analytics_ledger, home, "report", "verify", str(out), expect=1)
    assert "altered: csv/top_sources.csv" in done.stderr


@pytest.mark.parametrize(
    ("period", "why"),
    [
        ("2026-13", "not a month"),
        ("2099-01", "in the future"),
        ("last month", "neither a month"),
        ("2020-01-01..2026-11-30", "at most 366"),
    ],
)
def test_bad_period_exits_2_with_one_line(analytics_ledger: Ledger, home: Path, period: str, why: str) -> None:
    done = run(analytics_ledger, home, "report", "-c", "acme", "-p", period, expect=2)
    assert why in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_client_without_data_gets_an_empty_report(analytics_ledger: Ledger, home: Path, tmp_path: Path) -> None:
    seed(analytics_ledger)
    out = tmp_path / "r"
    done = run(analytics_ledger, home, "report", "-c", "rival", "-p", "2026-10", "--out", str(out))
    assert "no telemetry" in done.stdout
    assert 'id="empty-state"' in (out / "report.html").read_text()
    assert json.loads((out / "figures.json").read_text())["empty"] is True


def test_unknown_client_is_one_line(analytics_ledger: Ledger, home: Path) -> None:
    done = run(analytics_ledger, home, "report", "-c", "nobody", "-p", "2026-11", expect=1)
    assert "no client 'nobody'" in done.stderr
