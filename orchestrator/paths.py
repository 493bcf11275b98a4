"""Where the tool's own Ansible content and templates live (the project tree beside the package)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError


def project_root() -> Path:
    """The folder holding playbooks/, roles/ and templates/; ``SENTRY_PROJECT_DIR`` overrides it."""
    env = os.environ.get("SENTRY_PROJECT_DIR")
    root = Path(env) if env else Path(__file__).resolve().parent.parent
    if not (root / "playbooks").is_dir():
        raise ConfigError(
            f"no playbooks/ folder in {root}",
            hint="install sentryctl from its source tree (pip install -e .) or set SENTRY_PROJECT_DIR",
        )
    return root


def playbook(name: str) -> Path:
    path = project_root() / "playbooks" / name
    if not path.exists():
        raise ConfigError(f"playbook {name} not found in {path.parent}")
    return path


def roles_dir() -> Path:
    return project_root() / "roles"
