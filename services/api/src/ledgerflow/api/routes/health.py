"""``GET /health``: 200 only when the system can take work, else 503 with the reasons."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from ledgerflow.api.deps import Context
from ledgerflow.api.schemas import HealthResponse

router = APIRouter(tags=["Monitor"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(ctx: Context) -> JSONResponse:
    report = await ctx.health.check(ctx.pool)
    code = 200 if report.status == "healthy" else 503
    return JSONResponse(report.model_dump(mode="json"), status_code=code)
