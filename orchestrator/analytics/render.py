"""Figures as one HTML page: the report's ``report.html`` and the portal's dashboard are the same template
(``templates/analytics/figures.html.j2``), the portal adding its filter form. StrictUndefined: a missing variable
fails loudly. Autoescape on: client, host and rule names are data, never markup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from ..paths import project_root
from . import charts
from .figures import Figures


@dataclass(frozen=True)
class PortalView:
    """What the portal adds to the page: the filter choices and where its forms post."""

    hosts: Sequence[str]
    period: str
    host: str | None


@cache
def _env() -> jinja2.Environment:
    """One environment per process: templates compile once (the portal renders a page per request)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(project_root() / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
    )


def chart_set(f: Figures) -> dict[str, Any]:
    return {
        "alerts": charts.stacked_days(f.alerts_per_day(), f"Alerts per day by severity, {f.period.label}"),
        "sources": charts.horizontal_bars(
            [(s.ip, float(s.alerts)) for s in f.sources], "Top attacking sources by alerts"
        ),
        "drops": charts.horizontal_bars(
            [(h, float(p)) for h, p, _ in f.drops_per_host()], "Packets dropped by the firewall per host"
        ),
        "uptime": charts.horizontal_bars(
            [(u.host, u.share) for u in f.uptime if u.share is not None], "Heartbeat uptime per host", unit="%"
        ),
    }


def figures_html(f: Figures, *, portal: PortalView | None = None) -> str:
    return (
        _env()
        .get_template("analytics/figures.html.j2")
        .render(f=f, doc=f.to_json(), charts=chart_set(f), portal=portal)
    )


def login_html(*, message: str | None = None, form: bool = True) -> str:
    return _env().get_template("analytics/login.html.j2").render(message=message, form=form)
