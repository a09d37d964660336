"""Deleting old events from ClickHouse (`tilecast prune-events`, `TILECAST_EVENTS_RETENTION_DAYS`).

Events are partitioned by month: months wholly before the cut are dropped as partitions (instant, no rewrite);
the rest, in the cut's own month (or one team's events), go with a mutation (`ALTER TABLE … DELETE`), which
rewrites the parts holding them and is waited for (`mutations_sync`), so the count returned is gone when the
call returns. On a cluster both run ON CLUSTER, on the replicated local tables. Persons are kept.
"""

from datetime import UTC, datetime

from app.clickhouse.client import ClickHouse
from app.clickhouse.schema import EVENTS_TABLE, Layout


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def prune_events(
    client: ClickHouse, before: datetime, team_id: int | None = None, cluster: str | None = None
) -> int:
    """Delete the events timed before `before` (of one team, or all); returns how many went."""
    layout = Layout(client.database, cluster)
    db = client.database
    table = f"{db}.{EVENTS_TABLE}_local" if cluster else f"{db}.{EVENTS_TABLE}"
    params: dict[str, object] = {"before": _text(before)}
    where = "timestamp < {before:DateTime64(6, 'UTC')}"
    if team_id is not None:
        params["team"] = team_id
        where += " AND team_id = {team:Int64}"
    counted = await client.query(f"SELECT count() FROM {db}.{EVENTS_TABLE} WHERE {where}", params)
    total = int(counted[0][0])
    if not total:
        return 0
    if team_id is None:
        months = await client.query(
            f"SELECT DISTINCT toYYYYMM(timestamp) FROM {db}.{EVENTS_TABLE}"
            " WHERE timestamp < toStartOfMonth({before:DateTime64(6, 'UTC')})",
            params,
        )
        for (month,) in months:
            await client.command(f"ALTER TABLE {table}{layout.on_cluster} DROP PARTITION ID '{int(month)}'")
    await client.command(
        f"ALTER TABLE {table}{layout.on_cluster} DELETE WHERE {where} SETTINGS mutations_sync = 2", params
    )
    return total
