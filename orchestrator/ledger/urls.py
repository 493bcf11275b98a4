"""Which database the ledger lives in: resolving the URL people pass, and showing it without its password."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import LedgerError

LEDGER_FILE = "ledger.db"
URL_HINT = "use sqlite:////absolute/path/ledger.db or postgresql+psycopg://user:password@host:5432/database"

# A password may appear as userinfo or as a libpq query parameter; both are masked.
_QUERY_SECRET = re.compile(r"([?&](?:password|passfile|sslpassword)=)[^&#]*", re.IGNORECASE)
MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with every password replaced by ``***``. Works on text that is not a valid URL too, because the
    URL people mistype is exactly the one that ends up in an error message."""
    scheme_end = url.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
        query = url.find("?", start)
        netloc_end = len(url) if query < 0 else query
        # The last '@' before the query ends the userinfo: an unencoded '@' in a password then stays masked.
        at = url.rfind("@", start, netloc_end)
        if at >= 0:
            colon = url.find(":", start, at)
            if colon >= 0:
                url = f"{url[: colon + 1]}{MASK}{url[at:]}"
    return _QUERY_SECRET.sub(rf"\g<1>{MASK}", url)


def scrub(text: str, url: URL) -> str:
    """``text`` (a driver's error message) with the URL's password removed, in case the driver echoed it."""
    if url.password:
        text = text.replace(str(url.password), MASK)
    return text


def default_url(home: Path) -> URL:
    return URL.create("sqlite+pysqlite", database=str(home / LEDGER_FILE))


def resolve_url(url: str | None, home: Path) -> URL:
    """The SQLAlchemy URL for ``url``, or the SQLite file under ``home`` when it is None.

    PostgreSQL always goes through psycopg 3 (the only driver shipped); ``postgres://`` and bare ``postgresql://``
    are accepted as people write them.
    """
    if url is None:
        return default_url(home)
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError):
        # Without a scheme there is no telling which part is a password, so such text is not echoed at all.
        shown = repr(mask_url(url)) if "://" in url else "(it has no scheme://)"
        raise LedgerError(f"cannot parse the ledger URL {shown}", hint=URL_HINT) from None

    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise LedgerError(f"unsupported SQLite driver {driver!r} in {mask_url(url)}", hint=URL_HINT)
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise LedgerError(f"the ledger needs a database file, not {mask_url(url)!r}", hint=URL_HINT)
        return parsed.set(drivername="sqlite+pysqlite")
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise LedgerError(f"unsupported PostgreSQL driver {driver!r} in {mask_url(url)}", hint=URL_HINT)
        if not parsed.database:
            raise LedgerError(f"the ledger URL {mask_url(url)} names no database", hint=URL_HINT)
        return parsed.set(drivername="postgresql+psycopg")
    raise LedgerError(f"unsupported ledger database {backend!r} in {mask_url(url)}", hint=URL_HINT)


def display(url: URL) -> str:
    return mask_url(url.render_as_string(hide_password=False))
