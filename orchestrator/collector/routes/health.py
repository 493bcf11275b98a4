"""``GET /healthz``: ok when the ledger database answers; 503 otherwise. Says nothing else (it is public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...ledger import Ledger, LedgerError
from ..deps import get_ledger, public

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[Depends(public)])
async def healthz(ledger: Annotated[Ledger, Depends(get_ledger)]) -> JSONResponse:
    try:
        await run_in_threadpool(ledger.collector_client, "0" * 64)
    except LedgerError:
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
