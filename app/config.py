"""Settings, read once from the environment (and a `.env` file when present)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # `postgresql://` or `postgresql+asyncpg://`; unset means the embedded server.
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    data_dir: Path = Field(default=Path(".tilecast"), alias="TILECAST_DATA_DIR")
    # Connections kept open. Overflow connections are opened under load and closed as soon as they are
    # returned to a full pool: at a steady load above the pool's size every request would open one (a few
    # milliseconds of CPU each), so by default there are none and a request waits for a pooled one.
    db_pool_size: int = Field(default=20, alias="TILECAST_DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(default=0, alias="TILECAST_DB_MAX_OVERFLOW", ge=0)
    # Seconds a request waits for a free connection before it is answered 503 (shorter than a client's
    # patience, so clients retry instead of timing out).
    db_pool_timeout_s: float = Field(default=5, alias="TILECAST_DB_POOL_TIMEOUT_S", gt=0)
    # Milliseconds; applied to every connection of the pool. 0 disables it.
    db_statement_timeout_ms: int = Field(default=30_000, alias="TILECAST_DB_STATEMENT_TIMEOUT_MS", ge=0)
    log_level: str = Field(default="INFO", alias="TILECAST_LOG_LEVEL")
    # `plain` (one readable line per record) or `json` (one JSON object per line), for the app and uvicorn.
    log_format: Literal["plain", "json"] = Field(default="plain", alias="TILECAST_LOG_FORMAT")
    # /metrics (Prometheus): off unless a token is set (scrapers send `Authorization: Bearer <token>`) or
    # a port is given (`tilecast serve` then serves it there, on `metrics_host`, for every worker).
    metrics_token: SecretStr | None = Field(default=None, alias="TILECAST_METRICS_TOKEN")
    metrics_port: int | None = Field(default=None, alias="TILECAST_METRICS_PORT", ge=1, le=65535)
    metrics_host: str = Field(default="127.0.0.1", alias="TILECAST_METRICS_HOST")
    # Where events live and tiles compute: `postgres` (the default) or `clickhouse` (the optional extra
    # `.[clickhouse]`). With ClickHouse and no URL, an in-process chdb keeps its data under data_dir (one
    # process only); with a URL (`http://user:password@host:8123/database`), that server or cluster.
    events_backend: Literal["postgres", "clickhouse"] = Field(
        default="postgres", alias="TILECAST_EVENTS_BACKEND"
    )
    clickhouse_url: str | None = Field(default=None, alias="TILECAST_CLICKHOUSE_URL")
    # A ClickHouse cluster's name (its `remote_servers` entry): the tables are then replicated on every shard
    # and read and written through Distributed tables, every DDL statement run ON CLUSTER.
    clickhouse_cluster: str | None = Field(
        default=None, alias="TILECAST_CLICKHOUSE_CLUSTER", pattern=r"^[A-Za-z0-9_-]+$"
    )
    # Per-query limits on ClickHouse (its own settings `max_memory_usage` and `max_result_rows`; the time
    # limit is TILECAST_QUERY_TIMEOUT_MS): past one, the query is refused with an error naming the setting.
    clickhouse_max_memory_bytes: int = Field(
        default=4 * 1024 * 1024 * 1024, alias="TILECAST_CLICKHOUSE_MAX_MEMORY_BYTES", ge=1
    )
    clickhouse_max_result_rows: int = Field(
        default=1_000_000, alias="TILECAST_CLICKHOUSE_MAX_RESULT_ROWS", ge=1
    )
    # Events older than this many days are deleted once a day (by one worker at a time). Unset: kept.
    events_retention_days: int | None = Field(default=None, alias="TILECAST_EVENTS_RETENTION_DAYS", ge=1)
    # The address clients reach Tilecast at (`https://dash.example.com`), for the links it writes.
    # Unset: each request's own scheme and Host.
    public_url: str | None = Field(default=None, alias="TILECAST_PUBLIC_URL")
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated addresses or networks
    # (`10.0.0.0/8,127.0.0.1`), or `*`. Empty: none; the peer's own address is the client's.
    trusted_proxies: str = Field(default="", alias="TILECAST_TRUSTED_PROXIES")
    default_page_size: int = Field(default=100, alias="TILECAST_PAGE_SIZE", ge=1)
    max_page_size: int = Field(default=1000, alias="TILECAST_MAX_PAGE_SIZE", ge=1)
    # Every request body (but capture's, below) is refused past this size, before it is parsed.
    max_body_bytes: int = Field(default=5 * 1024 * 1024, alias="TILECAST_MAX_BODY_BYTES", ge=1)
    # Capture: the request body as received (checked while reading), and the payload once decompressed
    # (checked while inflating, so a gzip bomb stops at the limit).
    capture_max_body_bytes: int = Field(
        default=20 * 1024 * 1024, alias="TILECAST_CAPTURE_MAX_BODY_BYTES", ge=1
    )
    capture_max_payload_bytes: int = Field(
        default=20 * 1024 * 1024, alias="TILECAST_CAPTURE_MAX_PAYLOAD_BYTES", ge=1
    )
    # Events in one capture request; more is a 413 (a small gzip body can carry hundreds of thousands).
    capture_max_events: int = Field(default=10_000, alias="TILECAST_CAPTURE_MAX_EVENTS", ge=1)
    # Events a project API key may send per minute, counted in PostgreSQL (shared by every worker); 0 is off.
    capture_rate_limit_per_minute: int = Field(
        default=0, alias="TILECAST_CAPTURE_RATE_LIMIT_PER_MINUTE", ge=0
    )

    # Tiles: the live tiles one dashboard may hold, and the tiles one request may create (PATCH/PUT `tiles`
    # and `duplicate_tiles`, an insight's `dashboards`, duplicating a dashboard). More is a 400 naming the
    # field. They bound what one dashboard costs to render and one request to write.
    max_tiles_per_dashboard: int = Field(default=500, alias="TILECAST_MAX_TILES_PER_DASHBOARD", ge=1)
    max_new_tiles_per_request: int = Field(default=200, alias="TILECAST_MAX_NEW_TILES_PER_REQUEST", ge=1)

    # Insight queries: the statement timeout of one computation, and when a cached result goes stale.
    query_timeout_ms: int = Field(default=60_000, alias="TILECAST_QUERY_TIMEOUT_MS", ge=1)
    cache_target_age_hourly_s: int = Field(default=3600, alias="TILECAST_CACHE_TARGET_AGE_HOURLY_S", ge=0)
    cache_target_age_s: int = Field(default=6 * 3600, alias="TILECAST_CACHE_TARGET_AGE_S", ge=0)
    # A client may ask for a fresh computation of the same result at most this often.
    min_refresh_interval_s: int = Field(default=60, alias="TILECAST_MIN_REFRESH_INTERVAL_S", ge=0)
    # Seconds a worker remembers who a key is on a team (app.auth.principal_cache), sparing the statement that
    # finds it; a key revoked or rescoped in the database is refused everywhere within this. 0 disables it.
    auth_cache_ttl_s: float = Field(default=2.0, alias="TILECAST_AUTH_CACHE_TTL_S", ge=0, le=5)
    # Bytes of cached results (their JSON as stored) each team may keep, so that no team's one-off queries
    # grow the cache without end or push out another team's results. Past it, that team's ad-hoc results
    # (`filters_override`, `/query/`) are evicted first, then its saved insights', least recently used first.
    cache_budget_bytes_per_team: int = Field(
        default=200 * 1024 * 1024, alias="TILECAST_CACHE_BUDGET_BYTES_PER_TEAM", ge=0
    )
    # How much work one query may ask for: past a limit, `POST /query/` and saving an insight answer 400
    # naming the field, and a dashboard tile carries the error. Breakdown values (`breakdown_limit`) x time
    # buckets of one series, checked before any SQL runs (memory and time grow with it).
    query_max_breakdown_points: int = Field(default=50_000, alias="TILECAST_QUERY_MAX_BREAKDOWN_POINTS", ge=1)
    # Bytes of JSON of one computed result, measured while it is built, before it is stored (a backstop for
    # many series or long ranges; PostgreSQL cannot store more than 255 MB in one jsonb value anyway).
    query_max_result_bytes: int = Field(
        default=20 * 1024 * 1024, alias="TILECAST_QUERY_MAX_RESULT_BYTES", ge=1
    )
    # Values in one property filter (`"value": [...]`).
    query_max_filter_values: int = Field(default=10_000, alias="TILECAST_QUERY_MAX_FILTER_VALUES", ge=1)
    # Bind parameters of one SQL statement, counted from the query's filters (up to 4 each) before anything
    # is built. asyncpg refuses more than 32,767, but the bound is the event loop: SQLAlchemy compiles a
    # statement there, in time proportional to its filters: ~0.4 ms per filter of the costliest kind on
    # 2 cores, so ~50 ms at 500, ~100 ms at 1,000.
    query_max_parameters: int = Field(default=500, alias="TILECAST_QUERY_MAX_PARAMETERS", ge=100, le=32_767)
    # PostgreSQL's `work_mem` (kB) for the statements that sort every event they read per actor (funnels):
    # PostgreSQL's default of 4 MB sends the sort of a few hundred thousand events to disk. Set for that
    # statement only (0 keeps the server's setting).
    query_work_mem_kb: int = Field(default=65_536, alias="TILECAST_QUERY_WORK_MEM_KB", ge=0, le=2_097_151)

    # SQL insights (HogQL): each team's SQL runs on connections of its own role (`app.sql_sandbox`).
    # Connections each worker keeps open for every team together (least recently used teams' closed first),
    # and the most one team may open (its role's CONNECTION LIMIT, for every worker and host together).
    sql_max_connections: int = Field(default=10, alias="TILECAST_SQL_MAX_CONNECTIONS", ge=1)
    sql_team_connections: int = Field(default=5, alias="TILECAST_SQL_TEAM_CONNECTIONS", ge=1, le=1000)
    # Milliseconds one SQL query may run (the statement timeout of its read-only transaction).
    sql_timeout_ms: int = Field(default=30_000, alias="TILECAST_SQL_TIMEOUT_MS", ge=1)
    # The key the team roles' passwords are derived from (HMAC-SHA256). Unset: one is generated on first use
    # and stored in PostgreSQL. Never logged.
    sql_sandbox_secret: SecretStr | None = Field(default=None, alias="TILECAST_SQL_SANDBOX_SECRET")

    # Tile rendering: at most this many tiles compute at once in each worker (dashboard retrieves and streams
    # together), each on a connection of its own; kept below the pool (pool size + overflow) so that requests
    # always find a connection. Larger values are lowered to the pool's size + overflow - 1.
    render_concurrency: int = Field(default=8, alias="TILECAST_RENDER_CONCURRENCY", ge=1)
    # `stream_tiles`: open streams each worker serves at once (more answer 503 with Retry-After), the
    # heartbeat comment's interval, the longest a stream stays open, how long one message may wait for a
    # client that stopped reading, and the reconnection delay sent to `EventSource` (`retry:`).
    stream_max_streams: int = Field(default=2000, alias="TILECAST_STREAM_MAX_STREAMS", ge=1)
    stream_heartbeat_s: float = Field(default=15, alias="TILECAST_STREAM_HEARTBEAT_S", gt=0)
    stream_max_lifetime_s: float = Field(default=600, alias="TILECAST_STREAM_MAX_LIFETIME_S", gt=0)
    stream_send_timeout_s: float = Field(default=30, alias="TILECAST_STREAM_SEND_TIMEOUT_S", gt=0)
    stream_retry_ms: int = Field(default=3000, alias="TILECAST_STREAM_RETRY_MS", ge=0)
    # Origins whose pages may call the API from a browser (CORS), comma-separated
    # (`https://app.example.com,http://localhost:3000`) or `*`. Empty: none.
    cors_allowed_origins: str = Field(default="", alias="TILECAST_CORS_ALLOWED_ORIGINS")
    # Sharing. The key that signs the JWTs of unlocked password-protected shares; unset, one is generated on
    # first use and stored in PostgreSQL, so that every worker and host agrees. Never logged.
    sharing_jwt_secret: SecretStr | None = Field(default=None, alias="TILECAST_SHARING_JWT_SECRET")
    # Failed unlock attempts a minute, per share and per share and client address, counted in PostgreSQL
    # (shared by every worker); past either, 429 with Retry-After until the minute ends. 0 is off.
    sharing_unlock_limit_per_token: int = Field(
        default=30, alias="TILECAST_SHARING_UNLOCK_LIMIT_PER_TOKEN", ge=0
    )
    sharing_unlock_limit_per_address: int = Field(
        default=10, alias="TILECAST_SHARING_UNLOCK_LIMIT_PER_ADDRESS", ge=0
    )
    # Password checks (argon2id, ~20 MB and tens of milliseconds of one core each) run in threads, at most
    # this many at once per process (1: a core stays free for the event loop, whatever the guessing); more
    # waiting than 32 times this is answered 503 at once.
    sharing_password_checks: int = Field(default=1, alias="TILECAST_SHARING_PASSWORD_CHECKS", ge=1, le=64)

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    "TILECAST_PUBLIC_URL must be an http(s) URL such as https://dash.example.com"
                )
        return value

    @property
    def cors_origins(self) -> list[str]:
        origins = (origin.strip().rstrip("/") for origin in self.cors_allowed_origins.split(","))
        return [origin for origin in origins if origin]

    @property
    def effective_render_concurrency(self) -> int:
        """`render_concurrency`, at most the pool's connections less one."""
        return max(1, min(self.render_concurrency, self.db_pool_size + self.db_max_overflow - 1))


@lru_cache
def get_settings() -> Settings:
    return Settings()
