"""Defence packs: signed, versioned detection rules and blocklists that reach agents without a release.

One concern a module, each building only on those before it:

- :mod:`.errors`: :class:`DefenceError` (and its usage-like :class:`DefenceInputError`);
- :mod:`.pack`: the ``sentry-pack/1`` file, its canonical bytes and digest, the typed :class:`Pack`;
- :mod:`.probe`: the stand-alone script that times each rule's pattern on adversarial lines (run in a subprocess);
- :mod:`.validate`: every check a pack passes before it is signed, failures naming the rule or entry;
- :mod:`.catalog`: build a pack into ``<home>/defence/packs/<version>/`` and the ledger, read, list and verify it.

Getting packs to hosts builds on those: :mod:`.policy` (orchestrator/data/defence.yml), :mod:`.gates` (pure
verdicts on heartbeats), :mod:`.executor` and :mod:`.push` (canary, dwell, waves; resume), :mod:`.revert` (the
kill switch) and :mod:`.proposals` (collective defence). They are imported by their own names, not from here.
"""

from __future__ import annotations

from .catalog import (
    build_pack,
    build_pack_files,
    get_pack,
    latest_pack,
    list_packs,
    packs_dir,
    verify_pack,
)
from .errors import DefenceError, DefenceInputError
from .pack import FORMAT, BlocklistEntry, Pack
from .validate import validate_version

__all__ = [
    "FORMAT",
    "BlocklistEntry",
    "DefenceError",
    "DefenceInputError",
    "Pack",
    "build_pack",
    "build_pack_files",
    "get_pack",
    "latest_pack",
    "list_packs",
    "packs_dir",
    "validate_version",
    "verify_pack",
]
