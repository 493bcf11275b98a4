"""Per-client secrets: an ansible-vault encrypted file in the client's inventory.

The values live only in ``inventories/<client>/secrets.vault.yml`` (encrypted) and, decrypted, on the hosts
that need them. The vault password is a random key in ``<home>/vault/<client>.pass`` (mode 0600), created on
first use; runs get the two *paths*, never a value, so nothing secret reaches a command line, a log, a runner
artifact or the ledger (which records only that a secret changed, and its name).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, InventoryError
from .inventory import Inventory
from .ledger import Ledger
from .settings import Settings

SECRETS_FILE = "secrets.vault.yml"
# Secret name -> the stack variable that carries it.
KNOWN: dict[str, str] = {
    "collector_token": "sentry_agent_collector_token",
    # Apprise URLs the collector pages (orchestrator/incidents/targets.py); no role uses them.
    "paging_primary": "sentry_paging_primary",
    "paging_second_line": "sentry_paging_second_line",
}
VALUE_RE = re.compile(r"[\x21-\x7e]{8,4096}")  # printable, no spaces: tokens, not prose (full match)
# Ansible renders Jinja in extra-vars values on the controller, where lookup('pipe', ...) runs a command.
TEMPLATE_MARKERS = ("{{", "{%", "{#")


def vault_file(inv: Inventory) -> Path:
    return inv.path / SECRETS_FILE


def password_file(settings: Settings, client: str, *, create: bool = False) -> Path:
    path = settings.home / "vault" / f"{client}.pass"
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
    if path.exists() and path.stat().st_mode & 0o077:
        raise ConfigError(f"vault password file {path} is readable by others", hint=f"chmod 600 {path}")
    return path


def _vault(settings: Settings, client: str, *, create: bool = False) -> Any:
    from ansible.parsing.vault import VaultLib, VaultSecret

    pw = password_file(settings, client, create=create)
    if not pw.exists():
        raise ConfigError(
            f"no vault password for client {client} at {pw}",
            hint="restore it from Sentry's key escrow; without it the client's secrets cannot be read",
        )
    return VaultLib([("default", VaultSecret(pw.read_text().strip().encode()))])


def _read(settings: Settings, inv: Inventory) -> dict[str, str]:
    path = vault_file(inv)
    if not path.exists():
        return {}
    from ansible.errors import AnsibleError

    try:
        plain = _vault(settings, inv.client).decrypt(path.read_bytes())
    except AnsibleError as exc:
        raise ConfigError(f"cannot decrypt {path}: wrong vault password for client {inv.client}") from exc
    data = yaml.safe_load(plain) or {}
    if not isinstance(data, dict):
        raise InventoryError(f"{path} must hold a mapping of variables")
    return {str(k): str(v) for k, v in data.items()}


def names(settings: Settings, inv: Inventory) -> list[str]:
    """The secrets set for a client (names only: values are never returned to callers that print)."""
    by_var = {v: k for k, v in KNOWN.items()}
    return sorted(by_var.get(var, var) for var in _read(settings, inv))


def values(settings: Settings, inv: Inventory) -> list[str]:
    """The client's secret values, for redaction only (never to print or record)."""
    return list(_read(settings, inv).values())


def get_secret(settings: Settings, inv: Inventory, name: str) -> str | None:
    """One secret's value, for code that hands it on without printing it (the collector token's hash)."""
    if name not in KNOWN:
        raise InventoryError(f"unknown secret {name!r}", hint=f"known: {', '.join(sorted(KNOWN))}")
    return _read(settings, inv).get(KNOWN[name])


def set_secret(settings: Settings, inv: Inventory, name: str, value: str, ledger: Ledger) -> None:
    if name not in KNOWN:
        raise InventoryError(f"unknown secret {name!r}", hint=f"known: {', '.join(sorted(KNOWN))}")
    if any(marker in value for marker in TEMPLATE_MARKERS):
        raise InventoryError(
            f"the value for {name} must not contain {{{{, {{% or {{#: Ansible would render it as a template"
        )
    if not VALUE_RE.fullmatch(value):
        raise InventoryError(f"the value for {name} must be 8-4096 printable characters without spaces")
    data = _read(settings, inv)
    data[KNOWN[name]] = value
    plain = yaml.safe_dump(data, sort_keys=True).encode()
    cipher = _vault(settings, inv.client, create=True).encrypt(plain)
    path = vault_file(inv)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(cipher)
    tmp.chmod(0o600)
    try:
        if name == "collector_token":
            # The collector authenticates by the token's hash: a new token replaces (revokes) the old one. Asked
            # before the vault changes, so a refused (revoked) token never reaches the vault.
            ledger.register_collector_token(inv.client, hashlib.sha256(value.encode()).hexdigest())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    ledger.append_event("client.secret_set", inv.client, name, {"variable": KNOWN[name]})


def run_files(settings: Settings, inv: Inventory) -> tuple[Path, Path] | None:
    """(encrypted vars file, password file) for a run, or None when the client has no secrets."""
    path = vault_file(inv)
    if not path.exists():
        return None
    return path, password_file(settings, inv.client)
