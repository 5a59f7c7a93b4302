"""``GET /api/v2/version`` (public, ADR 0009): the API's version, as Airflow answers."""

from __future__ import annotations

import importlib.metadata
import os

from fastapi import APIRouter
from ledgerflow.api.airflow_models import VersionInfo
from ledgerflow.api.deps import PUBLIC

router = APIRouter(tags=["Version"])


def api_version() -> str:
    try:
        return importlib.metadata.version("ledgerflow-api")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0+unknown"


@router.get("/version", response_model=VersionInfo, dependencies=[PUBLIC])
async def get_version() -> VersionInfo:
    """``git_version`` is ``$LEDGERFLOW_GIT_VERSION`` when the build set it."""
    return VersionInfo(version=api_version(), git_version=os.environ.get("LEDGERFLOW_GIT_VERSION"))
