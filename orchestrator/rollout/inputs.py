"""Planner inputs from the world: inventories (tier, window, hosts, track overrides), the ledger (what each host
runs, training sign-offs) and the release's manifest."""

from __future__ import annotations

from collections.abc import Sequence

from .. import clients as client_store
from .. import inventory, window
from ..errors import InventoryError
from ..inventory import Inventory
from ..ledger import Ledger
from ..releases import Release
from ..settings import Settings
from ..tiers import get_tier
from .plan import ClientInput, HostInput, ReleaseInput, TrainingInput
from .tracks import load_tracks


def select_clients(settings: Settings, names: Sequence[str], all_clients: bool) -> list[Inventory]:
    if all_clients and names:
        raise InventoryError("give --client or --all, not both")
    if all_clients:
        # The lab's own inventory is a stand-in for trying things, not a client: name it to include it.
        found = [inv for inv in client_store.list_clients(settings) if not inv.meta.get("lab")]
        if not found:
            raise InventoryError(f"no clients under {settings.inventories}", hint="onboard one with 'client new'")
        return found
    if not names:
        raise InventoryError("no clients chosen", hint="pass --client NAME (repeatable) or --all")
    return [inventory.load(settings.inventories, n) for n in dict.fromkeys(names)]


def release_input(release: Release) -> ReleaseInput:
    return ReleaseInput(
        version=release.version,
        track=release.track,
        min_previous_version=release.min_previous_version,
        requires_training=release.requires_training,
    )


def client_input(inv: Inventory, ledger: Ledger, release: Release) -> ClientInput:
    tier = get_tier(inv.tier or "")
    known = ledger.client(inv.client) is not None  # a client never recorded runs nothing and trained no one
    running = {r.host: r.release_version for r in ledger.host_releases(inv.client)} if known else {}
    training_record = ledger.training_status(inv.client, release.version, release.requires_training) if known else None
    training = (
        TrainingInput(
            signed_off=training_record.state == "signed_off",
            scheduled_for=training_record.scheduled_for.isoformat() if training_record.scheduled_for else None,
        )
        if training_record is not None
        else None
    )
    override = inv.path / "tracks.yml"
    track = load_tracks(override_path=override if override.exists() else None)[release.track]
    return ClientInput(
        name=inv.client,
        tier_name=tier.name,
        around_the_clock=tier.around_the_clock,
        window=window.parse(str(inv.meta.get("window") or "always")),
        hosts=tuple(HostInput(inv.client, h.name, running.get(h.name)) for h in inv.hosts),
        training=training,
        track=track,
    )
