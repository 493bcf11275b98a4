"""The pack catalog (``<home>/defence/packs/<version>/{pack.json,pack.json.sig}``) and the ledger's copy of it.

Like releases: a version is built once, validated, signed with the release signing key, assembled in a hidden
folder and only then renamed into place, and recorded in the ledger (``defence.pack_built``). The ledger's copy
(bytes, signature, digest) is what the collector serves, so packs reach agents from any machine that shares the
ledger; :func:`verify_pack` checks that both copies are the same signed bytes.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import paths
from ..releases import ReleaseError, signing
from ..versions import version_key
from .errors import DefenceError, DefenceInputError
from .pack import (
    MAX_PACK_BYTES,
    PACK_FILE,
    SIGNATURE_FILE,
    Pack,
    canonical_bytes,
    digest_of,
    pack_object,
    read_pack,
)
from .validate import check_protected, check_rules, parse_blocklist, protected_networks, validate_version

if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..settings import Settings

log = logging.getLogger(__name__)

LIST_HINT = "see 'sentryctl defence list'"


def packs_dir(home: Path) -> Path:
    return home / "defence" / "packs"


def build_pack(
    settings: Settings,
    ledger: Ledger,
    *,
    version: str,
    rules: Mapping[str, Any] | None,
    blocklist: Sequence[Mapping[str, Any]],
    actor: str | None = None,
) -> Pack:
    """Validate, sign, write into the catalog and record pack ``version``; a version is never built twice."""
    version = validate_version(version)
    home = settings.home
    final = packs_dir(home) / version
    if final.exists() or ledger.pack(version) is not None:
        raise _exists(version)
    if rules is None and not blocklist:
        raise DefenceInputError(
            "a pack needs rules, a blocklist, or both", hint="pass --rules FILE and/or --blocklist FILE"
        )
    signed_by = signing.check_key_pair(home)  # before any work: no key, no pack
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    rules_version, rule_count = (None, 0) if rules is None else check_rules(rules, paths.project_root() / "agent")
    entries = parse_blocklist(blocklist, now)
    check_protected(entries, protected_networks(settings))
    data = canonical_bytes(pack_object(version, now, rules, entries))
    if len(data) > MAX_PACK_BYTES:
        raise DefenceInputError(f"pack {version} is {len(data)} bytes; at most {MAX_PACK_BYTES} reach agents")
    signature = signing.sign(data, home)
    _write_catalog(final, data, signature, version)
    digest = digest_of(data)
    try:
        ledger.record_pack(
            version,
            digest,
            signature,
            data,
            rules_version=rules_version,
            rule_count=rule_count,
            blocklist_count=len(entries),
            actor=actor,
        )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)  # ours, made a moment ago: the pack exists in both or neither
        raise
    log.info("defence pack %s (%s) built at %s, signed by %s", version, digest[:12], final, signed_by)
    return read_pack(data, signed_by=signed_by)


def _write_catalog(final: Path, data: bytes, signature: bytes, version: str) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=final.parent))
    try:
        (work / PACK_FILE).write_bytes(data)
        (work / SIGNATURE_FILE).write_bytes(signature)
        work.chmod(0o755)
        try:
            os.rename(work, final)
        except OSError as exc:  # another build of this version won the race
            raise _exists(version) from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _exists(version: str) -> DefenceError:
    return DefenceInputError(
        f"defence pack {version} already exists; pack versions are never overwritten",
        hint="build the change as a new version",
    )


# ------------------------------------------------------------------------------------------------ files
def build_pack_files(
    settings: Settings, ledger: Ledger, *, version: str, rules_file: Path | None, blocklist_file: Path | None
) -> Pack:
    """What ``sentryctl defence build`` calls: read the files (one clear line per problem), then :func:`build_pack`."""
    if rules_file is None and blocklist_file is None:
        raise DefenceInputError("give --rules FILE, --blocklist FILE, or both")
    rules = load_rules_file(rules_file) if rules_file is not None else None
    blocklist = load_blocklist_file(blocklist_file) if blocklist_file is not None else []
    return build_pack(settings, ledger, version=version, rules=rules, blocklist=blocklist)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefenceInputError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


def load_rules_file(path: Path) -> dict[str, Any]:
    """A detection rules file (the agent's rules.json format) as an object."""
    try:
        data = json.loads(_read(path, "rules file"))
    except ValueError as exc:
        raise DefenceInputError(f"rules file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DefenceInputError(f"rules file {path}: must be a JSON object {{version, rules}}")
    return data


def load_blocklist_file(path: Path) -> list[dict[str, Any]]:
    """A YAML or JSON list of ``{net, expires, comment}``."""
    try:
        data = yaml.safe_load(_read(path, "blocklist file"))
    except yaml.YAMLError as exc:
        raise DefenceInputError(
            f"blocklist file {path} is not valid YAML or JSON: {' '.join(str(exc).split())}"
        ) from None
    if not isinstance(data, list) or not data:
        raise DefenceInputError(f"blocklist file {path}: must be a non-empty list of {{net, expires, comment}}")
    for i, entry in enumerate(data):
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("expires"), _dt.date)
            and not isinstance(entry.get("expires"), _dt.datetime)
        ):
            raise DefenceInputError(f"blocklist file {path}: entry {i}: a date alone has no time: 2026-12-14T00:00:00Z")
    return data


# ------------------------------------------------------------------------------------------------ reading
def _current_key(home: Path) -> tuple[Path, str | None]:
    path = signing.public_key_path(home)
    try:
        return path, signing.public_fingerprint(home)
    except ReleaseError:
        return path, None


def _signed_by(data: bytes, signature: bytes, home: Path) -> str | None:
    """The current key's fingerprint when it verifies the pack; None otherwise (``verify`` says why)."""
    path, fingerprint = _current_key(home)
    if fingerprint is None:
        return None
    try:
        signing.verify(data, signature, path)
    except ReleaseError:
        return None
    return fingerprint


def get_pack(settings: Settings, ledger: Ledger, version: str) -> Pack:
    """Pack ``version`` as the ledger holds it (``signed_by`` set when the current key verifies it)."""
    blob = ledger.pack_blob(validate_version(version))
    if blob is None:
        raise DefenceError(f"no defence pack {version} in the ledger", hint=LIST_HINT)
    content, signature, _ = blob
    return read_pack(content, signed_by=_signed_by(content, signature, settings.home))


def list_packs(settings: Settings, ledger: Ledger) -> list[Pack]:
    """Every pack, oldest version first (semantic order)."""
    found = [get_pack(settings, ledger, p.version) for p in ledger.packs()]
    return sorted(found, key=lambda p: version_key(p.version))


def latest_pack(settings: Settings, ledger: Ledger) -> Pack | None:
    found = list_packs(settings, ledger)
    return found[-1] if found else None


def verify_pack(settings: Settings, ledger: Ledger, version: str) -> Pack:
    """Refuse pack ``version`` unless the catalog's bytes and signature are the ledger's, its digest is theirs, and
    the current release public key verifies the signature; the error names what differs."""
    version = validate_version(version)
    blob = ledger.pack_blob(version)
    if blob is None:
        raise DefenceError(f"no defence pack {version} in the ledger", hint=LIST_HINT)
    content, signature, digest = blob
    folder = packs_dir(settings.home) / version
    problems: list[str] = []
    try:
        catalog_content = (folder / PACK_FILE).read_bytes()
        catalog_signature = (folder / SIGNATURE_FILE).read_bytes()
    except OSError as exc:
        raise DefenceError(
            f"pack {version}: cannot read the catalog copy {exc.filename}: {exc.strerror}",
            hint="the catalog is incomplete on this machine; the ledger's copy is what the collector serves",
        ) from None
    if catalog_content != content:
        problems.append(f"the catalog's {PACK_FILE} differs from the ledger's copy")
    if catalog_signature != signature:
        problems.append(f"the catalog's {SIGNATURE_FILE} differs from the ledger's copy")
    if digest_of(content) != digest:
        problems.append("the ledger's digest is not the sha256 of the ledger's copy")
    if digest_of(catalog_content) != digest:
        problems.append(f"the catalog's {PACK_FILE} does not have the recorded digest {digest[:12]}")
    path, fingerprint = _current_key(settings.home)
    try:
        signing.verify(content, signature, path)
    except ReleaseError as exc:
        problems.append(f"signature: {exc.message}")
    if problems:
        raise DefenceError(
            f"pack {version}: {'; '.join(problems)}", hint="do not push it; rebuild the change as a new version"
        )
    pack = read_pack(content, signed_by=fingerprint)
    if pack.version != version:
        raise DefenceError(f"pack {version}: its {PACK_FILE} says version {pack.version}")
    return pack
