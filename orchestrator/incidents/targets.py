"""Where a page goes: the client's inventory names, per ladder target (``primary``, ``second_line``), the vault
secret holding the Apprise URL(s); the URLs themselves are secrets in the client's vault, read only when a page is
sent and never logged.

client.yml (validated when the inventory is loaded, see :func:`orchestrator.inventory_schema.validate_paging`)::

    paging:
      primary: paging_primary          # default for every target: paging_<target>
      second_line: paging_second_line

A secret may hold several URLs separated by commas (Apprise's own convention).
"""

from __future__ import annotations

from pathlib import Path

from .. import inventory, vault
from ..errors import OrchestratorError
from ..settings import Settings


class TargetMissing(OrchestratorError):
    """Raised when a page's target has no URL to go to (no inventory, no secret)."""


def secret_name(meta_paging: object, target: str) -> str:
    if isinstance(meta_paging, dict) and isinstance(meta_paging.get(target), str):
        return str(meta_paging[target])
    return f"paging_{target}"


def resolve(settings: Settings, inventories: Path, client: str, target: str) -> list[str]:
    """The Apprise URLs of ``client``'s ``target``; :class:`TargetMissing` when there are none."""
    inv = inventory.load(inventories, client)
    name = secret_name(inv.meta.get("paging"), target)
    value = vault.get_secret(settings, inv, name)
    if not value:
        raise TargetMissing(
            f"client {client} has no secret {name} for paging target {target}",
            hint=f"sentryctl client secret set {name} --client {client}",
        )
    return [u for u in value.split(",") if u]
