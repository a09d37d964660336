"""SQL insights' executor: a team's SQL runs as that team's own PostgreSQL role, which can read nothing but
the team's rows, whatever the SQL says (the second layer, independent of the HogQL compiler).

The contract with the compiler:

- The compiler emits ONE PostgreSQL SELECT statement (text) with asyncpg-style positional parameters (`$1`,
  `$2`, ...) and their values. It names the tables unqualified, `events` and `person`, which have exactly the
  columns of `public.events` and `public.person` (`app.models.Event`, `Person`), and filters
  `team_id = <the team>` itself. It uses PostgreSQL's built-in functions only and never depends on session
  settings (time zones are explicit `AT TIME ZONE $n`).
- `await run_sql(app.state.sandbox, team_id, sql, params, timeout_ms=..., max_rows=...)` runs it in a READ
  ONLY transaction, as the team's role (whose `search_path` is its schema of two views,
  `events` and `person`, of the team's rows), bounded by `timeout_ms`, and answers a `SandboxResult`:
  `columns`, `types` (PostgreSQL type names), `rows` (tuples, at most `max_rows`), `has_more` (more rows
  existed).
- Errors are the engine's (`app.query.base`): `QueryError` with PostgreSQL's message for anything the
  database refuses in the SQL (a failing cast, division by zero, a permission denied, several statements:
  a 400); `QueryTimeout` past `timeout_ms` (504); `SandboxBusy` when the team (or the worker) has too many
  SQL queries running (429); `SandboxUnavailable` where the database lacks the per-team roles and the
  database user may not create them, naming what an operator runs (503).

`app.state.sandbox` is made by `create_app` and closed at shutdown; `roles` sets the roles up, `pools` runs
the queries. Operators' view: `docs/sql-insights.md`.
"""

from collections.abc import Sequence
from typing import Any

from app.sql_sandbox.pools import Sandbox, SandboxResult

__all__ = ["Sandbox", "SandboxResult", "run_sql"]


async def run_sql(
    sandbox: Any, team_id: int, sql: str, params: Sequence[Any], *, timeout_ms: int, max_rows: int
) -> SandboxResult:
    """Run one SELECT as `team_id`'s role. `sandbox` is the `Sandbox`, or `app.state` holding it."""
    runner: Sandbox = sandbox if isinstance(sandbox, Sandbox) else sandbox.sandbox
    return await runner.run(team_id, sql, params, timeout_ms=timeout_ms, max_rows=max_rows)
