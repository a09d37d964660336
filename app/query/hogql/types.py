"""A compiled expression: its SQL, its HogQL type and whether it can be NULL (which decides HogQL's
two-valued comparisons, §3.5)."""

from dataclasses import dataclass

# HogQL types as the compiler tracks them, with the ClickHouse name PostHog reports in `types`.
_CLICKHOUSE = {
    "String": "String",
    "JSON": "String",
    "Int": "Int64",
    "UInt": "UInt64",
    "Float": "Float64",
    "Bool": "UInt8",
    "UUID": "UUID",
    "Date": "Date",
    "Array": "Array(String)",
    "Tuple": "Tuple(String)",
    "Null": "Nothing",
    "Interval": "IntervalSecond",
}
NUMBERS = frozenset({"Int", "UInt", "Float", "Bool"})
TEXTS = frozenset({"String"})


@dataclass(frozen=True)
class E:
    sql: str
    type: str
    nullable: bool = False

    def as_bool(self) -> str:
        """As a PostgreSQL condition: HogQL's numbers are true when non-zero."""
        if self.type == "Bool":
            return self.sql
        if self.type == "Null":
            return "false"
        if self.type in NUMBERS:
            return f"(({self.sql}) <> 0)"
        return f"({self.sql})::boolean"

    def as_value(self) -> "E":
        """As a value: a condition becomes 0/1, as HogQL's booleans are numbers."""
        if self.type == "Bool":
            return E(f"({self.sql})::int", "Int", self.nullable)
        return self

    def as_text(self) -> str:
        if self.type == "String":
            return self.sql
        return f"({self.as_value().sql})::text"

    def clickhouse_type(self, timezone: str) -> str:
        if self.type == "DateTime":
            name = f"DateTime64(6, '{timezone}')"
        elif self.type == "DateTimeS":
            name = f"DateTime('{timezone}')"
        else:
            name = _CLICKHOUSE.get(self.type, "String")
        if self.nullable and not name.startswith(("Array", "Tuple", "Nothing")):
            return f"Nullable({name})"
        return name if name != "Nothing" else "Nullable(Nothing)"


def is_number(value: E) -> bool:
    return value.type in NUMBERS


def is_text(value: E) -> bool:
    return value.type in TEXTS
