"""Collector tokens through the real CLI against a real collector over TLS: a new ``collector_token`` secret
replaces the old one (401 from then on), ``token revoke`` shuts a client out, ``token ensure`` creates a missing
token and never resurrects a revoked one. Another client is never affected."""

from __future__ import annotations

import secrets as _random

from orchestrator import vault
from orchestrator.inventory import load
from orchestrator.settings import Settings

from .conftest import Collector, Counts, boot_id, record


def write_inventory(collector: Collector, client: str, hosts: list[str]) -> None:
    d = collector.inventories / client
    d.mkdir(parents=True)
    lines = "".join(f"    {h}: {{ansible_host: 10.0.0.{i + 1}}}\n" for i, h in enumerate(hosts))
    (d / "hosts.yml").write_text(f"all:\n  hosts:\n{lines}")
    (d / "client.yml").write_text(f"client: {client}\ntier: professional\n")


def accepted(collector: Collector, token: str, client: str = "acme", host: str = "game1") -> int:
    return collector.ingest(host, [record("alert", host, boot_id(), 0)], token=token, client=client).status


def test_a_new_secret_replaces_the_token_and_revoke_shuts_the_client_out(collector: Collector, counts: Counts) -> None:
    write_inventory(collector, "acme", ["game1", "game2"])
    first, second, third = (_random.token_urlsafe(24) for _ in range(3))
    fixture_token, rival = collector.tokens["acme"], collector.tokens["rival"]

    collector.sentryctl("client", "secret", "set", "collector_token", "--client", "acme", stdin=first + "\n")
    assert accepted(collector, first) == 200
    assert accepted(collector, fixture_token) == 401  # replaced: the old token is revoked
    assert "already registered" in collector.sentryctl("collector", "token", "ensure", "--client", "acme").stdout
    assert accepted(collector, first) == 200

    done = collector.sentryctl("client", "secret", "set", "collector_token", "--client", "acme", stdin=second + "\n")
    assert first not in done.stdout + done.stderr and second not in done.stdout + done.stderr  # never shown
    assert (accepted(collector, first), accepted(collector, second)) == (401, 200)

    assert (
        "revoked 1 collector token(s) of acme"
        in collector.sentryctl("collector", "token", "revoke", "--client", "acme").stdout
    )
    assert accepted(collector, second) == 401
    again = collector.sentryctl("collector", "token", "revoke", "--client", "acme", expect=1)
    assert "client acme has no live collector token" in again.stderr
    # ensure does not bring the revoked token back: it names the fix.
    refused = collector.sentryctl("collector", "token", "ensure", "--client", "acme", expect=1)
    assert "was revoked and cannot be used again" in refused.stderr
    assert "sentryctl client secret set collector_token --client acme" in refused.stderr
    assert accepted(collector, second) == 401

    collector.sentryctl("client", "secret", "set", "collector_token", "--client", "acme", stdin=third + "\n")
    assert [accepted(collector, t) for t in (fixture_token, first, second, third)] == [401, 401, 401, 200]
    assert accepted(collector, rival, client="rival", host="r1") == 200  # the other client never noticed
    assert counts() == (5, 0)  # the five 200s; nothing from any 401


def test_ensure_creates_a_missing_token_and_revokes_the_one_it_replaces(collector: Collector, counts: Counts) -> None:
    write_inventory(collector, "rival", ["r1"])
    old = collector.tokens["rival"]
    assert "registered" in collector.sentryctl("collector", "token", "ensure", "--client", "rival").stdout
    settings = Settings(home=collector.home, inventories=collector.inventories, db_url=collector.db_url)
    new = vault.get_secret(settings, load(collector.inventories, "rival"), "collector_token")
    assert new and new != old
    assert (
        accepted(collector, old, client="rival", host="r1"),
        accepted(collector, new, client="rival", host="r1"),
    ) == (
        401,
        200,
    )
    assert "already registered" in collector.sentryctl("collector", "token", "ensure", "--client", "rival").stdout
    assert accepted(collector, new, client="rival", host="r1") == 200
    assert accepted(collector, collector.tokens["acme"]) == 200
    assert counts() == (3, 0)
