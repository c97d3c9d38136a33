"""Citations out: `/papers/{id}.bib` and BibTeX / RIS / CSL-JSON exports of lists (issue 14)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from paperboy.web import deps

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
write_router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api", dependencies=[Depends(deps.require_csrf)])
