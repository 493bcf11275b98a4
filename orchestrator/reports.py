"""``sentryctl report``: one client's figures over a period as a folder that proves itself.

The folder holds ``report.html`` (self-contained: inline CSS and SVG charts, no script, nothing fetched),
``figures.json``, one CSV per figure under ``csv/``, and the evidence bundles' seal: ``MANIFEST.json`` with the
sha256 of every file and ``MANIFEST.sig`` signed with Sentry's key (:mod:`orchestrator.audit.bundle`, the one
home of that mechanism; ``sentryctl report verify`` is ``sentryctl audit verify``). The report is also an event in
the ledger's chain (``analytics.report``) with its manifest's hash.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .analytics import Figures, Period, figures
from .analytics.render import figures_html
from .audit.bundle import private_dir, seal
from .errors import ConfigError
from .ledger import Ledger
from .settings import Settings

FORMAT = "sentry-analytics-report/1"


@dataclass(frozen=True)
class ReportOutcome:
    path: Path
    manifest_sha256: str
    figures: Figures


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def default_dir(settings: Settings, client: str, period: Period, now: _dt.datetime) -> Path:
    label = period.label.replace("..", "_")
    return settings.home / "reports" / f"rp-{now.strftime('%Y%m%dT%H%M%SZ')}-{client}-{label}"


def write_report(
    settings: Settings, ledger: Ledger, client: str, period: Period, out_dir: Path | None = None
) -> ReportOutcome:
    """Compute, write and sign the report; ``out_dir`` must not exist yet (a report is never overwritten)."""
    f = figures(ledger, client, period)
    root = out_dir or default_dir(settings, client, period, f.computed_at)
    if root.exists():
        raise ConfigError(f"{root} already exists", hint="give a new --out folder; a signed report is never rewritten")
    private_dir(root)
    (root / "report.html").write_text(figures_html(f), encoding="utf-8")
    (root / "figures.json").write_text(json.dumps(f.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (root / "csv").mkdir(mode=0o700)
    for name, (header, rows) in f.tables().items():
        (root / "csv" / f"{name}.csv").write_text(csv_text(header, rows), encoding="utf-8")
    digest = seal(
        root,
        settings.home,
        {
            "format": FORMAT,
            "client": client,
            "period": f.to_json()["period"],
            "inputs": f.to_json()["inputs"],
        },
    )
    ledger.append_event(
        "analytics.report",
        client,
        period.label,
        {"manifest_sha256": digest, "path": str(root), "chain_head_seq": f.inputs.chain_seq},
    )
    return ReportOutcome(root, digest, f)
