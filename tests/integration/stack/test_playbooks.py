"""Playbook-level properties on the converged lab (check mode is proven in tests/integration/test_provision.py)."""

from __future__ import annotations

import pytest

from orchestrator import inventory, provision
from orchestrator.runner import run_playbook, tail_stdout

from ..conftest import Provisioned

pytestmark = pytest.mark.lab


def test_site_refuses_an_unknown_tier_before_changing_anything(provisioned: Provisioned) -> None:
    settings = provisioned.env.settings
    inv = inventory.load(settings.inventories, provisioned.client)
    request = provision.site_request(settings, inv, provisioned.first.bundle)  # type: ignore[attr-defined]
    request = type(request)(**{**request.__dict__, "extravars": {**request.extravars, "sentry_tier": "platinum"}})
    result = run_playbook(request, settings)
    assert not result.ok
    assert set(result.by_status("failed")) == {h.name for h in inv.hosts}
    assert all(o.changed == 0 for o in result.hosts.values())
    assert "platinum is not a tier" in tail_stdout(result, 200)
