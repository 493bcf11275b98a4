"""Where the tool's own Ansible content, templates and agent source live.

From a source checkout (or an editable install) they are the folders beside the package: ``playbooks/``,
``roles/``, ``templates/``, ``agent/``. An installed wheel carries copies of them inside the package, in
``orchestrator/content/`` (put there by the build hook in setup.py). ``SENTRY_PROJECT_DIR`` overrides both.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def _has_content(root: Path) -> bool:
    return (root / "playbooks").is_dir() and (root / "roles").is_dir()


def project_root() -> Path:
    """The folder holding playbooks/, roles/, templates/ and agent/."""
    env = os.environ.get("SENTRY_PROJECT_DIR")
    if env:
        root = Path(env)
        if not _has_content(root):
            raise ConfigError(
                f"SENTRY_PROJECT_DIR={env} holds no playbooks/ and roles/",
                hint="point it at a sentryctl source tree, or unset it to use the installed content",
            )
        return root
    for root in (_PACKAGE.parent, _PACKAGE / "content"):
        if _has_content(root):
            return root
    raise ConfigError(
        f"sentryctl's playbooks and roles are neither beside nor inside the package ({_PACKAGE})",
        hint="reinstall sentryctl from its wheel or source tree, or set SENTRY_PROJECT_DIR",
    )


def playbook(name: str) -> Path:
    path = project_root() / "playbooks" / name
    if not path.exists():
        raise ConfigError(f"playbook {name} not found in {path.parent}")
    return path


def roles_dir() -> Path:
    return project_root() / "roles"


COLLECTION = ("sentry", "stack")


def collections_path(home: Path) -> Path:
    """The ANSIBLE_COLLECTIONS_PATH of every run: it holds one collection, ``sentry.stack``, which is a link to the
    project root (the roles are addressed by their FQCN, ``sentry.stack.sentry_agent``, as a client's own Ansible
    addresses them once the collection is installed). Pure: :func:`link_collection` makes the link."""
    return home / "ansible" / "collections"


def link_collection(home: Path) -> Path:
    """Make (or repoint) ``<collections path>/ansible_collections/sentry/stack`` at the project root; atomic."""
    namespace = collections_path(home) / "ansible_collections" / COLLECTION[0]
    namespace.mkdir(parents=True, exist_ok=True, mode=0o700)
    link = namespace / COLLECTION[1]
    target = project_root().resolve()
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return link
    # Unique per call, not per process: two clients provisioned on two threads link at the same moment.
    tmp = namespace / f".{COLLECTION[1]}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)  # never a moment without the link, even with runs side by side
    return link
