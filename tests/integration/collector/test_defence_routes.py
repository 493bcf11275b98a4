"""The collector's defence routes against the real collector over real TLS, on both backends: a host's assignment,
the pack's exact signed bytes with their digest and signature headers, and the tenant walls (401 without a token,
403 for another client's host, 404 for a pack never offered to the token's client)."""

from __future__ import annotations

import base64
import hashlib
import http.client
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from orchestrator.defence import build_pack
from orchestrator.ledger import Ledger
from orchestrator.releases import signing
from orchestrator.settings import Settings

from .conftest import Collector


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def get(collector: Collector, path: str, token: str | None) -> Answer:
    conn = http.client.HTTPSConnection("127.0.0.1", collector.port, context=collector.context(), timeout=15)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        return Answer(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


@pytest.fixture
def packs(collector: Collector) -> dict[str, str]:
    """Two packs signed with a fresh release key; acme's game1 runs 1.0.0, rival's r1 runs 2.0.0."""
    signing.keygen(collector.home)
    settings = Settings(home=collector.home, inventories=collector.inventories, db_url=collector.db_url)
    digests = {}
    with Ledger.open(collector.db_url, collector.home) as ledger:
        for version, net in (("1.0.0", "203.0.113.0/24"), ("2.0.0", "198.51.100.0/24")):
            built = build_pack(settings, ledger, version=version, rules=None, blocklist=[{"net": net, "expires": "7d"}])
            digests[version] = built.digest
        ledger.assign_pack("acme", ["game1"], "1.0.0", digests["1.0.0"])
        ledger.assign_pack("rival", ["r1"], "2.0.0", digests["2.0.0"])
    return digests


def test_assignment_and_the_exact_signed_pack(collector: Collector, packs: dict[str, str]) -> None:
    acme = collector.tokens["acme"]
    mine = get(collector, "/v1/defence/assignment?host=game1", acme)
    assert mine.status == 200, mine.body
    assert mine.headers["content-type"].startswith("application/json")
    assert mine.body == b'{"host":"game1","version":"1.0.0","digest":"%s"}' % packs["1.0.0"].encode()
    # A live host without a pack: the release's own rules.
    none = get(collector, "/v1/defence/assignment?host=game2", acme)
    assert none.status == 200 and b'"version":null' in none.body and b'"digest":null' in none.body

    served = get(collector, "/v1/defence/packs/1.0.0", acme)
    assert served.status == 200
    assert served.headers["content-type"] == "application/json"
    catalog = (collector.home / "defence" / "packs" / "1.0.0").resolve()
    assert served.body == (catalog / "pack.json").read_bytes()
    assert served.headers["x-sentry-pack-digest"] == packs["1.0.0"] == hashlib.sha256(served.body).hexdigest()
    signature = base64.b64decode(served.headers["x-sentry-pack-signature"])
    assert signature == (catalog / "pack.json.sig").read_bytes()
    public = load_pem_public_key(signing.public_key_path(collector.home).read_bytes())
    public.verify(signature, served.body)  # type: ignore[union-attr]  # ed25519: raises when it does not verify


def test_tenant_walls(collector: Collector, packs: dict[str, str]) -> None:
    acme, rival = collector.tokens["acme"], collector.tokens["rival"]
    assert get(collector, "/v1/defence/assignment?host=r1", acme).status == 403
    assert get(collector, "/v1/defence/assignment?host=nohost", acme).status == 403
    assert get(collector, "/v1/defence/assignment?host=r1", rival).status == 200
    # Another client's pack, a pack that does not exist, a version that is not one: all the same 404.
    for path in ("/v1/defence/packs/2.0.0", "/v1/defence/packs/9.9.9", "/v1/defence/packs/..%2Fx"):
        answer = get(collector, path, acme)
        assert answer.status == 404 and packs["2.0.0"].encode() not in answer.body, path
    assert get(collector, "/v1/defence/packs/2.0.0", rival).status == 200
    for path in ("/v1/defence/assignment?host=game1", "/v1/defence/packs/1.0.0"):
        assert get(collector, path, None).status == 401
        assert get(collector, path, "not-a-token").status == 401
    assert get(collector, "/v1/defence/assignment?host=bad%20name", acme).status == 400


def test_the_previous_pack_stays_fetchable_and_requests_are_counted(
    collector: Collector, packs: dict[str, str], tmp_path: Path
) -> None:
    with Ledger.open(collector.db_url, collector.home) as ledger:
        ledger.assign_pack("acme", ["game1"], "2.0.0", packs["2.0.0"])
    acme = collector.tokens["acme"]
    # An agent that read the old assignment a moment ago still gets the pack it was told to fetch.
    assert get(collector, "/v1/defence/packs/1.0.0", acme).status == 200
    assert get(collector, "/v1/defence/packs/2.0.0", acme).status == 200
    operator = (collector.home / "collector" / "operator.token").read_text().strip()
    metrics = get(collector, "/metrics/", operator).body.decode()
    assert 'sentry_collector_defence_requests_total{result="ok",route="pack"} 2.0' in metrics
