"""Collector tokens: one bearer token per client, the client's ``collector_token`` secret (in its vault). The
ledger keeps only its sha256, which is what the collector looks up."""

from __future__ import annotations

import hashlib
import secrets

from .. import vault
from ..inventory import Inventory
from ..ledger import Ledger
from ..settings import Settings

SECRET = "collector_token"  # noqa: S105 - the secret's name


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_collector_token(settings: Settings, inv: Inventory, ledger: Ledger) -> bool:
    """Make sure the client has a token and the ledger knows its hash; True when something was created or
    registered. A new token is random; setting the secret registers it (the hook in :mod:`..vault`)."""
    current = vault.get_secret(settings, inv, SECRET)
    if current is None:
        vault.set_secret(settings, inv, SECRET, secrets.token_urlsafe(32), ledger)
        return True
    return ledger.register_collector_token(inv.client, token_sha256(current))
