"""Build hook: the wheel carries the tool's Ansible content, templates and the agent inside the package.

sentryctl runs playbooks and roles, renders templates and builds agent bundles from files that live beside the
package in the source tree (``playbooks/``, ``roles/``, ``templates/``, ``agent/``). An installed wheel has no
tree, so ``build_py`` copies those folders (and ``meta/``, the collection's runtime.yml) to ``orchestrator/content/``, where ``orchestrator.paths`` finds them
when it is not running from a checkout. Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# meta/ holds the collection's runtime.yml: the runner links content/ in as the sentry.stack collection, and
# ansible-core reads requires_ansible (and any routing) from there as from an installed collection.
CONTENT = ("playbooks", "roles", "meta", "templates", "agent")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", ".ruff_cache")


class BuildWithContent(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the tree itself
            return
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "orchestrator" / "content"
        for name in CONTENT:
            dest = target / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(root / name, dest, ignore=SKIP, symlinks=False)


setup(cmdclass={"build_py": BuildWithContent})
