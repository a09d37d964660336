"""ClickHouse as the events store, for teams past one PostgreSQL (`TILECAST_EVENTS_BACKEND=clickhouse`).

Events (and a copy of persons) live in ClickHouse; dashboards, keys, shares and result caches stay in
PostgreSQL. `client` talks to ClickHouse: in-process `chdb` when `TILECAST_CLICKHOUSE_URL` is unset (one
process, data under `TILECAST_DATA_DIR`), a server or cluster through `clickhouse-connect` otherwise. Both
come with the optional extra `pip install -e ".[clickhouse]"`;
nothing here is imported on the PostgreSQL backend.
"""
