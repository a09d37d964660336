"""One small async interface over ClickHouse, whichever way it is reached.

SQL text carries ClickHouse's own query parameters, `{name:Type}`, bound by the server (never formatted
into the text): both `chdb` and `clickhouse-connect` send them the same way. Rows come back as tuples of
Python values (ints, floats, strings, timezone-aware datetimes, dates, UUIDs, lists, None).
"""

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

Row = tuple[Any, ...]


class ClickHouseError(Exception):
    """ClickHouse refused or failed a statement. `code` is its numeric error code when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ClickHouse(Protocol):
    database: str

    async def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        """Run a SELECT and return its rows."""
        ...

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, INSERT … SELECT)."""
        ...

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (one block): all of them are stored, or the call raises."""
        ...

    async def close(self) -> None: ...


def _error_code(message: str) -> int | None:
    # "Code: 159. DB::Exception: …"
    head = message.strip().removeprefix("Code:").strip()
    number = head.split(".", 1)[0]
    return int(number) if number.isdigit() else None


def _server_code(exc: Exception) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    message = str(exc)
    return _error_code(message[message.index("Code:") :]) if "Code:" in message else None


def _settings_clause(settings: Mapping[str, Any] | None) -> str:
    if not settings:
        return ""
    parts = []
    for name, value in settings.items():
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad setting name {name!r}")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"setting {name} must be a number")
        parts.append(f"{name} = {value}")
    return " SETTINGS " + ", ".join(parts)


class ChdbClient:
    """ClickHouse in this process (`chdb`), its data in one folder. One process only: chdb's storage is not
    shared between processes. Statements run in a worker thread (chdb releases the GIL), one at a time."""

    def __init__(self, path: Path, database: str = "tilecast") -> None:
        import chdb

        path.mkdir(parents=True, exist_ok=True)
        self.database = database
        connect: Any = chdb.connect
        try:
            self._connection = connect(str(path))
        except RuntimeError as exc:
            raise ClickHouseError(
                f"chdb cannot open its data in {path}: {exc}. chdb serves one process only: is another "
                "`tilecast` process (a running `serve`) using it? Stop it first, or use a ClickHouse server "
                "(TILECAST_CLICKHOUSE_URL).",
                _error_code(str(exc).split("connection: ", 1)[-1]),
            ) from None
        self._lock = threading.Lock()
        self._run_sync(f"CREATE DATABASE IF NOT EXISTS {database}", {}, "Null")

    def _run_sync(self, sql: str, parameters: Mapping[str, Any], fmt: str) -> Any:
        with self._lock:
            params = dict(parameters) if parameters else None
            try:
                try:
                    return self._connection.query(sql, fmt, params=params)
                except Exception as exc:
                    # After some failed statements (a pattern RE2 cannot compile) chdb answers the next one
                    # with an empty Arrow stream: that one is run again.
                    if type(exc).__name__ != "ArrowInvalid":
                        raise
                    return self._connection.query(sql, fmt, params=params)
            except RuntimeError as exc:
                self._discard_next_result()
                raise ClickHouseError(str(exc), _error_code(str(exc))) from None

    def _discard_next_result(self) -> None:
        """After a failed query, chdb (4.4) hands the next query a corrupt result (its Arrow output reads as
        "Invalid flatbuffers message"): one throwaway query takes it."""
        try:
            self._connection.query("SELECT 1", "CSV")
        except (RuntimeError, UnicodeDecodeError):
            pass

    async def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        text = sql + _settings_clause(settings)
        table = await asyncio.to_thread(self._run_sync, text, _escaped(parameters), "ArrowTable")
        columns = [column.to_pylist() for column in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        await asyncio.to_thread(self._run_sync, sql, _escaped(parameters), "Null")

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        import pyarrow as pa

        data = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})
        await asyncio.to_thread(self._insert_arrow, table, list(columns), data)

    def _insert_arrow(self, table: str, columns: list[str], data: Any) -> None:
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        payload = sink.getvalue().to_pybytes()
        with self._lock:
            try:
                with self._connection.send_insert(
                    f"INSERT INTO {table} ({', '.join(columns)})", format="ArrowStream"
                ) as inserter:
                    inserter.append(payload)
                    inserter.finish()
            except RuntimeError as exc:
                raise ClickHouseError(str(exc), _error_code(str(exc))) from None

    async def close(self) -> None:
        with self._lock:
            self._connection.close()


def _escaped(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """chdb parses parameter values as ClickHouse's escaped text: backslashes, tabs and newlines in strings
    must be escaped, as clickhouse-connect does for a server."""
    if not parameters:
        return {}
    return {name: _escape(value) for name, value in parameters.items()}


def _escape(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return _array_literal(value)
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _array_literal(values: Sequence[Any]) -> str:
    """A list parameter (`{uuids:Array(UUID)}`) as ClickHouse's array literal, its strings quoted."""
    parts = []
    for value in values:
        if isinstance(value, list | tuple):
            parts.append(_array_literal(value))
        elif value is None:
            parts.append("NULL")
        elif isinstance(value, bool):
            parts.append("1" if value else "0")
        elif isinstance(value, int | float):
            parts.append(repr(value))
        else:
            parts.append("'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'")
    return "[" + ",".join(parts) + "]"


class ServerClient:
    """A ClickHouse server or cluster over HTTP(S) (`clickhouse-connect`)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.database = (parts.path or "/").strip("/") or "tilecast"
        self._url = url
        self._client: Any = None

    async def _get(self) -> Any:
        if self._client is None:
            import clickhouse_connect

            parts = urlsplit(self._url)
            self._client = await clickhouse_connect.get_async_client(
                host=parts.hostname or "localhost",
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                username=parts.username or "default",
                password=parts.password or "",
                secure=parts.scheme == "https",
                database="default",
                # An insert into a Distributed table (a cluster) returns once the shards hold the rows,
                # not once they are queued on this node: capture acknowledges only what is stored.
                settings={"insert_distributed_sync": 1},
            )
            await self._client.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        return self._client

    async def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        client = await self._get()
        try:
            result = await client.query(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))
        except Exception as exc:
            raise ClickHouseError(str(exc), _server_code(exc)) from None
        return [tuple(row) for row in result.result_rows]

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        client = await self._get()
        try:
            await client.command(sql, parameters=dict(parameters or {}))
        except Exception as exc:
            raise ClickHouseError(str(exc)) from None

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        client = await self._get()
        try:
            await client.insert(table, [list(row) for row in rows], column_names=list(columns))
        except Exception as exc:
            raise ClickHouseError(str(exc)) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def open_clickhouse(url: str | None, data_dir: Path) -> ClickHouse:
    """The server at `url` (`http(s)://user:password@host:port/database`), or chdb under `data_dir`."""
    if url:
        return ServerClient(url)
    return ChdbClient(data_dir / "clickhouse")


def describe(url: str | None, data_dir: Path, cluster: str | None = None) -> str:
    """Where the events are, for the logs: the server without its password, or chdb's folder."""
    if not url:
        return f"chdb in this process, data in {data_dir / 'clickhouse'}"
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or (8443 if parts.scheme == 'https' else 8123)}"
    database = (parts.path or "/").strip("/") or "tilecast"
    return f"{where}, database {database}" + (f", cluster {cluster}" if cluster else "")
