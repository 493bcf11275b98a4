"""On-site training: the feature track's gate. A feature release reaches a client only after Sentry trained the
client's people and the trainer signed it off; scheduling renders the release notes and the training packet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from . import inventory
from .clients import ensure_client, template_env
from .errors import InventoryError
from .ledger import Ledger
from .releases import get_release
from .settings import Settings, private_tree
from .tiers import get_tier


def packet_dir(settings: Settings, client: str, version: str) -> Path:
    return settings.home / "training" / client / version


def render_packet(
    settings: Settings, ledger: Ledger, client: str, version: str, *, trainer: str, scheduled_for: str | None
) -> list[Path]:
    """Write the client's release notes and training packet for ``version``; returns their paths."""
    inv = inventory.load(settings.inventories, client)
    release = get_release(settings.home, version)
    running = {r.host: r.release_version for r in ledger.host_releases(client)} if ledger.client(client) else {}
    context = {
        "release": release,
        "client": inv,
        "tier": get_tier(inv.tier or ""),
        "running": running,
        "trainer": trainer,
        "scheduled_for": scheduled_for,
    }
    env = template_env()
    out = packet_dir(settings, client, version)
    (settings.home / "training").mkdir(parents=True, exist_ok=True, mode=0o700)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for name in ("release_notes", "training_packet"):
        path = out / f"{name.replace('_', '-')}.md"
        path.write_text(env.get_template(f"training/{name}.md.j2").render(context), encoding="utf-8")
        written.append(path)
    private_tree(settings.home / "training")  # names the client's people and hosts
    return written


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InventoryError(f"invalid --date {text!r}", hint="use YYYY-MM-DD") from exc


def schedule(
    settings: Settings,
    ledger: Ledger,
    client: str,
    version: str,
    *,
    date: str,
    trainer: str,
    backdate: str | None = None,
    today: dt.date | None = None,
) -> tuple[object, list[Path]]:
    """Schedule a session. A day in the past is refused unless ``backdate`` says why (recorded in the event):
    a session that already happened is a sign-off, and a typo in the year must not pass as one."""
    inv = inventory.load(settings.inventories, client)
    release = get_release(settings.home, version)
    if not trainer.strip():
        raise InventoryError("a trainer is needed", hint='pass --trainer "Full Name"')
    when = parse_date(date)
    if backdate is not None and not backdate.strip():
        raise InventoryError("--backdate needs a reason", hint='e.g. --backdate "recording a session held on site"')
    if when < (today or dt.datetime.now(dt.UTC).date()) and backdate is None:
        raise InventoryError(
            f"--date {when.isoformat()} is in the past",
            hint='pick a future day, or pass --backdate "REASON" to record a past one on purpose',
        )
    ensure_client(ledger, inv)
    record = ledger.schedule_training(
        client,
        release.version,
        trainer=trainer.strip(),
        scheduled_for=when,
        module=release.requires_training,
        backdate_reason=backdate if when < (today or dt.datetime.now(dt.UTC).date()) else None,
    )
    paths = render_packet(settings, ledger, client, version, trainer=trainer.strip(), scheduled_for=when.isoformat())
    return record, paths


def signoff(
    settings: Settings,
    ledger: Ledger,
    client: str,
    version: str,
    *,
    trainer: str,
    attendees: Sequence[str],
    notes: str | None = None,
    unscheduled: bool = False,
) -> object:
    """Sign off; one that was never scheduled needs ``unscheduled`` (and is recorded as such)."""
    inv = inventory.load(settings.inventories, client)
    release = get_release(settings.home, version)
    people = [a.strip() for a in attendees if a.strip()]
    if not people:
        raise InventoryError("a sign-off needs at least one --attendee", hint='add --attendee "Full Name"')
    if not trainer.strip():
        raise InventoryError("a trainer is needed", hint='pass --trainer "Full Name"')
    ensure_client(ledger, inv)
    return ledger.signoff_training(
        client,
        release.version,
        trainer=trainer.strip(),
        attendees=people,
        notes=notes,
        module=release.requires_training,
        unscheduled=unscheduled,
    )
