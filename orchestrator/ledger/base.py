"""What the ledger's API modules share: checked JSON values, the clock, and the base of the mixins.

:class:`~orchestrator.ledger.store.Ledger` is assembled from mixins (clients, hosts, runs, rollouts, ...) so that
each subject reads on its own. They all write through the one ``_write`` of the store: one transaction, the chain's
write lock first, state and events together. :class:`LedgerMixin` only declares, for the type checker, what the
mixins use of the store; the store defines it.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .chain import canonical_json
from .errors import LedgerError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session

    from .models import Client
    from .store import _Tx


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def json_object(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A plain dict that is certain to serialize, so a bad value fails here and not halfway through a commit."""
    try:
        return dict(json.loads(canonical_json(dict(value))))
    except (TypeError, ValueError) as exc:
        raise LedgerError(f"{what} is not JSON-serializable: {exc}") from exc


def names(values: Sequence[str], what: str, *, strip: bool = False) -> list[str]:
    """Non-blank, distinct names in the order given (with ``strip``, without surrounding blanks); a duplicate or a
    blank one is a mistake worth naming, and so is none at all. A lone ``str`` is refused: it is a sequence of
    one-letter names, never what the caller meant."""
    if isinstance(values, str):
        raise LedgerError(f"{what} must be a list of names, not the string {values!r}")
    seen: list[str] = []
    for given in values:
        if not isinstance(given, str) or not given.strip():
            raise LedgerError(f"{what} contains a blank name")
        value = given.strip() if strip else given
        if value in seen:
            raise LedgerError(f"{what} names {value!r} twice")
        seen.append(value)
    if not seen:
        raise LedgerError(f"{what} is empty")
    return seen


def required(value: str | None, what: str) -> str:
    """``value`` as given; missing or blank is refused."""
    if not isinstance(value, str) or not value.strip():
        raise LedgerError(f"{what} is required")
    return value


class LedgerMixin:
    """Base of the API mixins: declares what they use of :class:`~orchestrator.ledger.store.Ledger`."""

    if TYPE_CHECKING:
        actor: str

        def _write(self, actor: str | None) -> AbstractContextManager[_Tx]: ...

        def _read(self) -> AbstractContextManager[Session]: ...

        @staticmethod
        def _require_client(session: Session, name: str) -> Client: ...
