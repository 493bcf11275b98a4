"""Waivers: an auditor-accepted exception for one check on one host, with a justification and an expiry date.

The file (``inventories/<client>/waivers.yml`` unless ``--waivers`` names another)::

    waivers:
      - check: agent.health
        host: game2
        justification: "health port moved during the vendor's maintenance, ticket OPS-1234"
        approved_by: Ada Auditor
        expires: 2026-12-31          # valid through this day (UTC)

The whole file is validated before any host is contacted: a malformed entry, an unknown check or host, a
duplicate, or an expired waiver stops the audit at once with the entry named, never hours later.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import WaiverError

FIELDS = {"check", "host", "justification", "approved_by", "expires"}
MIN_JUSTIFICATION = 10


@dataclass(frozen=True)
class Waiver:
    check: str
    host: str
    justification: str
    approved_by: str
    expires: _dt.date

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "host": self.host,
            "justification": self.justification,
            "approved_by": self.approved_by,
            "expires": self.expires.isoformat(),
        }


def load_waivers(
    path: Path, *, checks: Collection[str], hosts: Collection[str], today: _dt.date
) -> dict[tuple[str, str], Waiver]:
    """The waivers of ``path`` by (check id, host), every one valid on ``today``; raises WaiverError otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WaiverError(f"waiver file {path} does not exist", hint="check the --waivers path") from None
    except (OSError, yaml.YAMLError) as exc:
        raise WaiverError(f"cannot read waiver file {path}: {' '.join(str(exc).split())}", hint="fix it") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping) or set(data) != {"waivers"} or not isinstance(data["waivers"], list):
        raise WaiverError(
            f"{path} must hold one key 'waivers' with a list of waivers", hint="see 'sentryctl audit --help'"
        )
    result: dict[tuple[str, str], Waiver] = {}
    for index, entry in enumerate(data["waivers"], start=1):
        waiver = _parse(entry, f"{path}: waiver {index}", checks=checks, hosts=hosts, today=today)
        key = (waiver.check, waiver.host)
        if key in result:
            raise WaiverError(f"{path}: waiver {index} repeats {waiver.check} on {waiver.host}", hint="keep one")
        result[key] = waiver
    return result


def _parse(entry: Any, where: str, *, checks: Collection[str], hosts: Collection[str], today: _dt.date) -> Waiver:
    if not isinstance(entry, Mapping):
        raise WaiverError(f"{where} is not a mapping", hint=f"give it the keys {', '.join(sorted(FIELDS))}")
    missing, unknown = FIELDS - set(entry), set(entry) - FIELDS
    if missing or unknown:
        problem = "; ".join(
            ([f"missing {', '.join(sorted(missing))}"] if missing else [])
            + ([f"unknown {', '.join(sorted(map(str, unknown)))}"] if unknown else [])
        )
        raise WaiverError(f"{where}: {problem}", hint=f"a waiver has exactly: {', '.join(sorted(FIELDS))}")
    check, host = str(entry["check"]), str(entry["host"])
    if check not in checks:
        raise WaiverError(f"{where} names unknown check {check!r}", hint="list them with 'sentryctl audit checks'")
    if host not in hosts:
        raise WaiverError(f"{where} names unknown host {host!r}", hint=f"hosts: {', '.join(sorted(hosts))}")
    justification = str(entry["justification"] or "").strip()
    if len(justification) < MIN_JUSTIFICATION:
        raise WaiverError(f"{where} needs a justification (at least {MIN_JUSTIFICATION} characters)",
                          hint="say why the exception is accepted, e.g. a ticket")  # fmt: skip
    approved_by = str(entry["approved_by"] or "").strip()
    if not approved_by:
        raise WaiverError(f"{where} needs approved_by: the auditor who accepted it")
    expires = entry["expires"]
    if isinstance(expires, str):
        try:
            expires = _dt.date.fromisoformat(expires)
        except ValueError:
            expires = None
    if not isinstance(expires, _dt.date) or isinstance(expires, _dt.datetime):
        raise WaiverError(f"{where}: expires must be a date, YYYY-MM-DD", hint="e.g. expires: 2026-12-31")
    if expires < today:
        raise WaiverError(
            f"{where} ({check} on {host}) expired on {expires.isoformat()}",
            hint="renew it with a new date and justification, or remove it",
        )
    return Waiver(check, host, justification, approved_by, expires)
