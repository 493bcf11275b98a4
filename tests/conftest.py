"""Shared test fixtures. Lab tests need root and the lab's Debian packages; with SENTRY_REQUIRE_LAB=1 (set by
the project's test command and CI) a missing prerequisite fails the run instead of skipping lab tests."""

from __future__ import annotations

import os
import shutil

import pytest

LAB_TOOLS = ("debootstrap", "systemd-nspawn", "ip", "ssh", "dpkg-scanpackages")


def lab_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root"
    missing = [t for t in LAB_TOOLS if shutil.which(t) is None]
    if missing:
        return f"lab tests need {', '.join(missing)}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = lab_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("SENTRY_REQUIRE_LAB") == "1":
        raise pytest.UsageError(f"SENTRY_REQUIRE_LAB=1 but {reason}")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)
