"""Where the orchestrator keeps its state, and the settings every command shares.

The state directory (``--home`` / ``SENTRY_HOME``) holds the ledger, keys, per-run artifact directories, the
lab and the debug log. Client inventories live apart from it (``--inventories`` / ``SENTRY_INVENTORIES``),
because they are meant to be reviewed and versioned by people.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

DEFAULT_HOME = Path("~/.local/state/sentryctl")


@dataclass(frozen=True)
class Settings:
    """Resolved locations; build with :meth:`from_env` at the CLI edge and pass down."""

    home: Path
    inventories: Path
    verbosity: int = 0
    db_url: str | None = None  # None: SQLite at <home>/ledger.db

    @classmethod
    def from_env(
        cls,
        home: str | os.PathLike[str] | None = None,
        inventories: str | os.PathLike[str] | None = None,
        verbosity: int = 0,
        db_url: str | None = None,
    ) -> Settings:
        raw_home = home or os.environ.get("SENTRY_HOME") or DEFAULT_HOME
        raw_inv = inventories or os.environ.get("SENTRY_INVENTORIES") or "inventories"
        return cls(
            home=Path(raw_home).expanduser().resolve(),
            inventories=Path(raw_inv).expanduser().resolve(),
            verbosity=verbosity,
            db_url=db_url or os.environ.get("SENTRY_DB_URL") or None,
        )

    # Paths under the state directory; created on demand by the code that writes them.
    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def lab_dir(self) -> Path:
        return self.home / "lab"

    @property
    def lab_cache(self) -> Path:
        """Base images and the lab apt repository: large, slow to build, shared by all labs of this home.

        ``SENTRY_LAB_CACHE`` lets several homes (test sessions, CI runs) share one cache.
        """
        env = os.environ.get("SENTRY_LAB_CACHE")
        return Path(env).expanduser().resolve() if env else self.home / "cache"

    @property
    def debug_log(self) -> Path:
        return self.home / "debug.log"

    def ensure_home(self) -> Path:
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create state directory {self.home}: {exc.strerror}",
                hint="pass a writable --home or set SENTRY_HOME",
            ) from exc
        self.tighten_home()
        return self.home

    def tighten_home(self) -> None:
        """The home holds the ledger, keys, vault passwords and run artifacts: it is 0700 and its secret files
        0600. An existing home with looser modes is tightened; a shared folder (sticky, like /tmp) or one owned
        by someone else is refused rather than changed."""
        try:
            st = self.home.stat()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ConfigError(f"cannot read state directory {self.home}: {exc.strerror}") from exc
        if st.st_mode & stat.S_ISVTX or st.st_uid != os.geteuid():
            raise ConfigError(
                f"state directory {self.home} is shared (sticky or owned by another user)",
                hint="pass a --home of your own, e.g. ~/.local/state/sentryctl",
            )
        private = [(self.home, 0o700), (self.runs_dir, 0o700), (self.home / "training", 0o700)]
        private += [(self.debug_log, 0o600)] + [(self.home / f"ledger.db{s}", 0o600) for s in ("", "-wal", "-shm")]
        for path, mode in private:
            try:
                if path.stat().st_mode & 0o077:
                    path.chmod(mode)
            except FileNotFoundError:
                continue

    def client_dir(self, client: str) -> Path:
        return self.inventories / client


def private_tree(root: Path) -> None:
    """Every folder under ``root`` 0700 and every file 0600 (run artifacts, training packets): their content
    names hosts, commands and output, which are no one else's business on a shared controller."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)
