"""``GET /v1/defence/assignment`` and ``GET /v1/defence/packs/<version>``: what defence pack a host is meant to run,
and the pack's exact signed bytes (docs: the defence contract, section 2).

Both take the agent's bearer token (:func:`~..deps.agent_client`, as ingest does) and answer only about the token's
client: the assignment only for a live host of it (403 otherwise, as ingest refuses a foreign host), a pack only
when it is or just was assigned to one of its hosts (404 otherwise: a client cannot learn of or fetch packs never
meant for it). The agent trusts none of it: it checks the body's sha256 against its assignment's digest and the
signature against its configured key. Each answer is bounded by the request timeout (a slow database answers 503,
the agent polls again) and counted in ``sentry_collector_defence_requests_total``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ... import versions
from ...ledger import Ledger
from ..config import CollectorSettings
from ..deps import agent_client, get_ledger, get_metrics, get_settings
from ..metrics import Metrics
from ..schema import HOST_RE

router = APIRouter(tags=["defence"])
T = TypeVar("T")


async def _bounded(settings: CollectorSettings, metrics: Metrics, route: str, call: Callable[[], T]) -> T:
    try:
        async with asyncio.timeout(settings.request_timeout_seconds):
            return await run_in_threadpool(call)
    except TimeoutError:
        metrics.defence.labels(route, "timeout").inc()
        raise HTTPException(503, "storage too slow, try later") from None


def _refuse(metrics: Metrics, route: str, status: int, result: str, message: str) -> HTTPException:
    metrics.defence.labels(route, result).inc()
    return HTTPException(status, message)


@router.get("/v1/defence/assignment")
async def assignment(
    client: Annotated[str, Depends(agent_client)],
    settings: Annotated[CollectorSettings, Depends(get_settings)],
    ledger: Annotated[Ledger, Depends(get_ledger)],
    metrics: Annotated[Metrics, Depends(get_metrics)],
    host: Annotated[str, Query(max_length=255)],
) -> dict[str, Any]:
    if not HOST_RE.match(host):
        raise _refuse(metrics, "assignment", 400, "bad_request", "'host' must be the inventory host name")

    def lookup() -> tuple[bool, Any]:
        return ledger.host_is_live(client, host), ledger.assignment(client, host)

    live, current = await _bounded(settings, metrics, "assignment", lookup)
    if not live:
        raise _refuse(metrics, "assignment", 403, "forbidden", f"host {host!r} is not one of your hosts")
    metrics.defence.labels("assignment", "ok").inc()
    return {
        "host": host,
        "version": current.version if current else None,
        "digest": current.digest if current else None,
    }


@router.get("/v1/defence/packs/{version}")
async def pack(
    version: str,
    client: Annotated[str, Depends(agent_client)],
    settings: Annotated[CollectorSettings, Depends(get_settings)],
    ledger: Annotated[Ledger, Depends(get_ledger)],
    metrics: Annotated[Metrics, Depends(get_metrics)],
) -> Response:
    if not versions.is_valid(version):
        raise _refuse(metrics, "pack", 404, "not_found", "no such pack")

    def lookup() -> tuple[bytes, bytes, str] | None:
        # The tenant check first: a client learns nothing, not even whether a pack exists, unless it was offered.
        return ledger.pack_blob(version) if ledger.pack_offered_to(client, version) else None

    blob = await _bounded(settings, metrics, "pack", lookup)
    if blob is None:
        raise _refuse(metrics, "pack", 404, "not_found", "no such pack")
    content, signature, digest = blob
    metrics.defence.labels("pack", "ok").inc()
    return Response(
        content,
        media_type="application/json",
        headers={
            "X-Sentry-Pack-Digest": digest,
            "X-Sentry-Pack-Signature": base64.b64encode(signature).decode("ascii"),
            "Cache-Control": "no-store",
        },
    )
