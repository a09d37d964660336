"""HogQL text to a sqlglot AST: sqlglot's ClickHouse dialect with HogQL's tokens, and the placeholders
(`{filters}`, `{name}`) turned into marker identifiers by one pass that skips string literals.

Functions are not mapped to sqlglot's classes (`FUNCTIONS` is empty): every call keeps the name the user
wrote, so that the compiler's allow-list sees exactly that name (HogQL's names are case-sensitive).
"""

import functools
import re
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from app.query.hogql.errors import HogQLSyntaxError

PLACEHOLDER_PREFIX = "__hogql_placeholder_"


class HogQL(ClickHouse):
    class Tokenizer(ClickHouse.Tokenizer):
        # `$` starts identifiers (`properties.$browser`), not heredoc strings.
        HEREDOC_STRINGS: ClassVar[list[str | tuple[str, str]]] = []
        SINGLE_TOKENS: ClassVar[dict[str, TokenType]] = {
            k: v for k, v in ClickHouse.Tokenizer.SINGLE_TOKENS.items() if k != "$"
        }
        VAR_SINGLE_TOKENS: ClassVar[set[str]] = {"$"}
        KEYWORDS: ClassVar[dict[str, TokenType]] = {
            **ClickHouse.Tokenizer.KEYWORDS,
            "~": TokenType.RLIKE,
            "=~": TokenType.RLIKE,
            "=~*": TokenType.IRLIKE,
            "~*": TokenType.IRLIKE,
        }

    class Parser(ClickHouse.Parser):  # type: ignore[valid-type,misc]
        FUNCTIONS: ClassVar[dict[str, Any]] = {}
        # Only the calls with their own grammar keep their parser (`CAST(x AS T)`, `quantile(p)(x)`, …).
        FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
            k: v
            for k, v in ClickHouse.Parser.FUNCTION_PARSERS.items()
            if k in ("CAST", "SUBSTRING", "TRIM", "QUANTILE", "EXTRACT")
        }


# A string literal (with `\` escapes and doubled quotes), a quoted identifier, a comment, or what the pass
# rewrites: a placeholder, a negated regex operator, the nullish-access `?.`.
_LEXEMES = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'|`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"|--[^\n]*|/\*.*?\*/"""
    r"""|\{(?P<placeholder>[^{}]*)\}|(?P<negregex>!~\*?)|(?P<nullish>\?\.)""",
    re.DOTALL,
)


def _prepass(text: str) -> tuple[str, list[str]]:
    """The text with every placeholder replaced by a marker identifier, and the placeholders in order."""
    placeholders: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match["placeholder"] is not None:
            placeholders.append(match["placeholder"].strip())
            return f" {PLACEHOLDER_PREFIX}{len(placeholders) - 1} "
        if match["negregex"] is not None:
            return " NOT " + match["negregex"][1:] + " "
        if match["nullish"] is not None:
            return "."
        return match[0]

    return _LEXEMES.sub(replace, text), placeholders


def parse(text: str) -> tuple[exp.Expression, list[str]]:
    """The statement's AST (a copy: callers may change it) and its placeholders; `HogQLSyntaxError` for
    anything that is not one SELECT. The last 512 texts parsed are kept."""
    tree, placeholders = _parse(text)
    return tree.copy(), list(placeholders)


@functools.lru_cache(maxsize=512)
def _parse(text: str) -> tuple[exp.Expression, tuple[str, ...]]:
    if not text.strip():
        raise HogQLSyntaxError("Empty query")
    rewritten, placeholders = _prepass(text)
    try:
        trees = sqlglot.parse(rewritten, dialect=HogQL)
    except SqlglotError as exc:
        raise HogQLSyntaxError(_syntax_message(exc)) from None
    except RecursionError:
        raise HogQLSyntaxError("The query is nested too deeply") from None
    statements = [tree for tree in trees if tree is not None]
    if len(statements) != 1:
        raise HogQLSyntaxError("mismatched input ';' expecting <EOF>")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.Union)):
        raise HogQLSyntaxError(f"Only SELECT queries are supported, not {tree.key.upper()}")
    return tree, tuple(placeholders)


def _syntax_message(exc: SqlglotError) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        description = first.get("description") or str(exc)
        line, col = first.get("line"), first.get("col")
        return f"Syntax error at line {line}, column {col}: {description}"
    return f"Syntax error: {str(exc).splitlines()[0]}"
