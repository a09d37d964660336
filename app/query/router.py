"""`POST /query/`: PostHog's endpoint for running a query directly."""

from typing import Annotated

from fastapi import APIRouter, Response

from app.auth.dependencies import TeamAccess, scoped
from app.db import SessionDep
from app.query import service
from app.query.render import RefreshMode, parse_refresh
from app.query.schemas import QueryRequest, QueryResponse

router = APIRouter(prefix="/query", tags=["query"])

QueryRead = Annotated[TeamAccess, scoped("query:read")]


@router.post("/", name="query_create", response_model=QueryResponse)
async def run_query(data: QueryRequest, session: SessionDep, access: QueryRead) -> Response:
    """Run a query (TrendsQuery, or an InsightVizNode wrapping one) and return its results."""
    mode = parse_refresh(data.refresh, default=RefreshMode.BLOCKING)
    return await service.run_query(session, access, data.query, mode)
