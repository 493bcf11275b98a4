"""``POST /v1/ingest``: one batch of one host's records (docs/telemetry-protocol.md).

The body is read here, bounded in size (compressed and decompressed) and in time; the envelope is checked
whole (400), each record on its own (rejected inside a 200); the batch is stored in one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import time
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from ...ledger import Ledger
from ...ledger.telemetry import HostNotAllowed, IncomingRecord
from ..config import CollectorSettings
from ..deps import agent_client, get_ledger, get_metrics, get_settings
from ..metrics import Metrics
from ..schema import EnvelopeError, parse_envelope, parse_record

router = APIRouter(tags=["ingest"])


def _refuse(metrics: Metrics, status: int, reason: str, message: str) -> HTTPException:
    metrics.rejects.labels(reason).inc()
    # Closing after a refused body: the peer may still be sending what we will not read.
    return HTTPException(status, message, headers={"Connection": "close"})


async def read_body(request: Request, settings: CollectorSettings, metrics: Metrics) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise _refuse(metrics, 413, "too_large", f"body over {settings.max_body_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(settings.request_timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.max_body_bytes:
                    raise _refuse(metrics, 413, "too_large", f"body over {settings.max_body_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise _refuse(metrics, 408, "timeout", "the body did not arrive in time") from None
    return b"".join(chunks)


def decode(body: bytes, encoding: str, settings: CollectorSettings, metrics: Metrics) -> Any:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, settings.max_decompressed_bytes)
        except zlib.error:
            raise _refuse(metrics, 400, "bad_gzip", "the body is not valid gzip") from None
        if inflater.unconsumed_tail:
            raise _refuse(metrics, 413, "too_large", f"body inflates over {settings.max_decompressed_bytes} bytes")
    elif encoding not in ("", "identity"):
        raise _refuse(metrics, 415, "bad_encoding", f"content encoding {encoding!r} is not gzip or identity")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _refuse(metrics, 400, "bad_json", "the body is not JSON") from None


@router.post("/v1/ingest")
async def ingest(
    request: Request,
    client: Annotated[str, Depends(agent_client)],
    settings: Annotated[CollectorSettings, Depends(get_settings)],
    ledger: Annotated[Ledger, Depends(get_ledger)],
    metrics: Annotated[Metrics, Depends(get_metrics)],
) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise _refuse(metrics, 415, "bad_content_type", "send Content-Type: application/json")
    body = await read_body(request, settings, metrics)
    started = time.perf_counter()
    data = decode(body, request.headers.get("content-encoding", ""), settings, metrics)
    try:
        envelope = parse_envelope(data, settings.max_records)
    except EnvelopeError as exc:
        status = 413 if "at most" in str(exc) else 400
        raise _refuse(metrics, status, "too_many" if status == 413 else "bad_envelope", str(exc)) from None
    good: list[IncomingRecord] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(envelope.records):
        parsed = parse_record(raw, envelope.host)
        if isinstance(parsed, str):
            rejected.append({"index": index, "reason": parsed})
        else:
            good.append(parsed)
    received_at = _dt.datetime.now(_dt.UTC)
    try:
        result = await run_in_threadpool(ledger.store_batch, client, envelope.host, good, received_at)
    except HostNotAllowed:
        raise _refuse(metrics, 403, "foreign_host", f"host {envelope.host!r} is not one of your hosts") from None
    metrics.latency.observe(time.perf_counter() - started)
    for kind, count in result.stored_by_type.items():
        metrics.records.labels(kind).inc(count)
    metrics.duplicates.inc(result.duplicates)
    if rejected:
        metrics.rejects.labels("bad_record").inc(len(rejected))
    metrics.last_seen.labels(client).set(received_at.timestamp())
    return {"stored": result.stored, "duplicates": result.duplicates, "rejected": rejected}
