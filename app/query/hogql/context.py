"""The app's SQL sandbox (`app.state.sandbox`) for the current request, set by `SandboxContextMiddleware`:
SQL insights run only there, as the team's own database role. Renders a request starts (tiles, streams)
inherit it."""

from contextvars import ContextVar
from typing import Any

CURRENT_SANDBOX: ContextVar[Any] = ContextVar("tilecast_sql_sandbox", default=None)
