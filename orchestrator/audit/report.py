"""The audit's reports: JSON for machines, JUnit XML for CI dashboards, HTML (templates/audit/) for people."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import jinja2

from .. import __version__
from ..paths import project_root
from .records import AuditOutcome, HostReport

FORMAT = "sentry-audit-report/1"


def summary(outcome: AuditOutcome) -> dict[str, Any]:
    counts = Counter(h.status for h in outcome.hosts.values())
    checks = Counter(c.status for h in outcome.hosts.values() for c in h.checks)
    return {
        "result": outcome.status,
        "hosts": len(outcome.hosts),
        "compliant": counts["compliant"],
        "drift": counts["drift"],
        "error": counts["error"],
        "checks_passed": checks["pass"],
        "checks_failed": checks["fail"],
        "checks_waived": checks["waived"],
        "checks_not_applicable": checks["not-applicable"],
    }


def report_json(outcome: AuditOutcome) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "audit": outcome.uid,
        "client": outcome.client,
        "tier": outcome.tier,
        "auditor": outcome.auditor,
        "started_at": outcome.started_at.isoformat(),
        "finished_at": outcome.finished_at.isoformat(),
        "sentryctl": __version__,
        "converge_checked": outcome.converge_checked,
        "summary": summary(outcome),
        "notes": list(outcome.notes),
        "hosts": {name: h.to_json() for name, h in sorted(outcome.hosts.items())},
    }


def junit_xml(outcome: AuditOutcome) -> bytes:
    """One test suite per host, one test case per check: failures carry expected vs found, waived checks are
    skipped with their waiver, a host that could not be audited is one errored case."""
    root = ET.Element("testsuites", name=f"sentry audit {outcome.client}", id=outcome.uid)
    for name, host in sorted(outcome.hosts.items()):
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{outcome.client}.{name}",
            hostname=host.address,
            timestamp=outcome.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
            tests=str(max(1, len(host.checks))),
            failures=str(len(host.failed)),
            errors="1" if host.error else "0",
            skipped=str(sum(c.status in ("waived", "not-applicable") for c in host.checks)),
        )
        if host.error:
            case = ET.SubElement(suite, "testcase", classname=f"{outcome.client}.{name}", name="connection")
            ET.SubElement(case, "error", message=host.error, type="unreachable").text = host.error
            continue
        for check in host.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{outcome.client}.{name}.{check.id.split('.', 1)[0]}",
                name=check.id,
                time=f"{check.seconds:.3f}",
            )
            ET.SubElement(case, "properties").append(
                ET.Element("property", name="description", value=check.description)
            )
            if check.status == "fail":
                message = f"expected {check.expected}; found {check.found}"
                ET.SubElement(case, "failure", message=message, type="drift").text = message
            elif check.status == "waived" and check.waiver:
                w = check.waiver
                ET.SubElement(
                    case, "skipped", message=f"waived by {w.approved_by} until {w.expires}: {w.justification}"
                )
            elif check.status == "not-applicable":
                ET.SubElement(case, "skipped", message=f"not applicable: {check.found}")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(project_root() / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # found values come from hosts: they are data, never markup
        keep_trailing_newline=True,
    )


def report_html(outcome: AuditOutcome) -> str:
    # Hosts with findings first (could not audit, drift), then the compliant ones; by name within each.
    order = {"error": 0, "drift": 1}
    hosts: list[HostReport] = sorted(outcome.hosts.values(), key=lambda h: (order.get(h.status, 2), h.host))
    return (
        _env()
        .get_template("audit/report.html.j2")
        .render(audit=report_json(outcome), outcome=outcome, hosts=hosts, summary=summary(outcome))
    )
