"""Audits in the ledger: recorded with who, when, result per host and bundle hash, chained as an event, and
refused when a field makes no sense."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.ledger import Ledger, LedgerError

SHA = "ab" * 32
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.add_client("acme", "enterprise", {})
    return ledger


def test_record_audit_then_list_and_chain(acme: Ledger) -> None:
    record = acme.record_audit(
        "au-1",
        "acme",
        auditor="Ada Auditor",
        started_at=START,
        result="drift",
        hosts={"web-2": "drift", "web-1": "compliant"},
        bundle_path="/evidence/au-1",
        bundle_sha256=SHA,
        actor="ada@sentry",
    )
    assert (record.client, record.auditor, record.result, record.bundle_sha256) == ("acme", "Ada Auditor", "drift", SHA)
    assert list(record.hosts) == ["web-1", "web-2"]
    assert record.started_at == START and record.finished_at >= START
    assert acme.audits("acme") == [record]
    assert acme.audits("globex") == []
    event = acme.events("acme")[-1]
    assert (event.kind, event.subject, event.actor) == ("audit.recorded", "au-1", "ada@sentry")
    assert event.payload["bundle_sha256"] == SHA and event.payload["result"] == "drift"
    assert acme.verify().ok


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("result", "fine", "audit result"),
        ("bundle_sha256", "nothex", "sha256"),
        ("hosts", {"web-1": "maybe"}, "host statuses"),
        ("auditor", " ", "auditor"),
    ],
)
def test_nonsense_is_refused_and_nothing_is_written(acme: Ledger, field: str, value: object, message: str) -> None:
    before = len(acme.events())
    kwargs: dict[str, object] = {
        "auditor": "Ada",
        "started_at": START,
        "result": "compliant",
        "hosts": {"web-1": "compliant"},
        "bundle_path": "/evidence/x",
        "bundle_sha256": SHA,
    }
    kwargs[field] = value
    with pytest.raises(LedgerError, match=message):
        acme.record_audit("au-2", "acme", **kwargs)  # type: ignore[arg-type]
    assert acme.audits() == [] and len(acme.events()) == before


def test_unknown_client_is_refused(acme: Ledger) -> None:
    with pytest.raises(LedgerError):
        acme.record_audit(
            "au-3", "nobody", auditor="Ada", started_at=START, result="compliant", hosts={}, bundle_path="/x",
            bundle_sha256=SHA,
        )  # fmt: skip
