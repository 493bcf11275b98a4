"""What provisioning hands every agent so it reports home: the collector's URL and its certificate pin.

Both come from the collector's state under ``<home>/collector/`` (made by ``sentryctl collector init``):
``collector.json``'s ``url`` (the address agents dial: on the lab, the bridge address) and the SHA-256 of
``cert.pem``'s DER bytes. The token is not an extra variable: it travels in the client's vault
(``sentry_agent_collector_token``), which the run decrypts on the controller; extra variables end up in the
run's private data directory as plain text, the vault does not. :func:`collector_extravars` only makes sure
the token exists (and the ledger knows its hash) before the run reads the vault.

Without an initialised collector it returns nothing and agents ship nothing (their spool keeps it all).

With the release signing key (``<home>/keys/release-signing.pub``, made by ``sentryctl release keygen``) it
also passes ``sentry_agent_pack_public_key``: the raw 32-byte Ed25519 public key in hex, the only key the agent
accepts detection packs from. Without the key agents poll no packs.
"""

from __future__ import annotations

import json
import logging

from cryptography.hazmat.primitives import serialization

from ..errors import ConfigError
from ..inventory import Inventory
from ..ledger import Ledger
from ..releases import signing
from ..settings import Settings
from .config import CERT_FILE, CONFIG_FILE, cert_sha256, collector_dir
from .tokens import ensure_collector_token

log = logging.getLogger(__name__)


def collector_extravars(settings: Settings, inv: Inventory, ledger: Ledger) -> dict[str, str]:
    """``sentry_agent_collector_url``, ``sentry_agent_collector_cert_sha256`` and, when the release signing key
    exists, ``sentry_agent_pack_public_key``; {} without a collector."""
    directory = collector_dir(settings)
    conf, cert = directory / CONFIG_FILE, directory / CERT_FILE
    if not (conf.is_file() and cert.is_file()):
        log.info("no collector initialised in %s: agents of %s will not ship", directory, inv.client)
        return {}
    try:
        url = json.loads(conf.read_text(encoding="utf-8"))["url"]
        pin = cert_sha256(cert)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the collector's URL and certificate in {directory}: {exc}",
            hint="run 'sentryctl collector init --force'",
        ) from exc
    ensure_collector_token(settings, inv, ledger)
    wiring = {"sentry_agent_collector_url": str(url), "sentry_agent_collector_cert_sha256": pin}
    key = pack_public_key(settings)
    if key is not None:
        wiring["sentry_agent_pack_public_key"] = key
    return wiring


def pack_public_key(settings: Settings) -> str | None:
    """The release signing public key as 64 hex digits (raw bytes), or None when there is none."""
    path = signing.public_key_path(settings.home)
    if not path.is_file():
        log.info("no release signing key at %s: agents will not poll detection packs", path)
        return None
    raw = signing.load_public_key(path).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()
