"""Reading schema SQL: split it into statements, and tell which idempotent DDL would change nothing.

``CREATE INDEX IF NOT EXISTS`` and ``ALTER TABLE … ADD COLUMN IF NOT EXISTS`` are no-ops when the index or
column exists, but PostgreSQL still takes the table lock first (SHARE, ACCESS EXCLUSIVE) and holds it to
the end of the schema transaction, where live requests queue behind it. The schema apply skips such
statements once the catalog shows they are done, so re-applying a schema takes no table locks.
"""

from __future__ import annotations

import re

_DOLLAR = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")
_INDEX = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+\"?(\w+)\"?\s+ON\s", re.I)
_COLUMN = re.compile(r"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?\"?(\w+)\"?\s+ADD\s+(?:COLUMN\s+)?IF\s+NOT\s+EXISTS"
                     r"\s+\"?(\w+)\"?\s", re.I)


def statements(sql: str) -> list[str]:
    """The top-level statements of ``sql``, without their leading comments.

    Semicolons inside quotes ('…', "…"), comments (-- …, /* … */) and dollar-quoted bodies ($$ … $$,
    $fn$ … $fn$) do not split.
    """
    result: list[str] = []
    start = index = 0
    length = len(sql)
    while index < length:
        char = sql[index]
        if char == "-" and sql.startswith("--", index):
            end = sql.find("\n", index)
            index = length if end < 0 else end + 1
        elif char == "/" and sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            index = length if end < 0 else end + 2
        elif char in ("'", '"'):
            end = index + 1
            while end < length:
                if sql[end] == char:
                    if end + 1 < length and sql[end + 1] == char:  # '' or "" inside the quotes
                        end += 2
                        continue
                    break
                end += 1
            index = end + 1
        elif char == "$" and (tag := _DOLLAR.match(sql, index)):
            end = sql.find(tag.group(), tag.end())
            index = length if end < 0 else end + len(tag.group())
        elif char == ";":
            result.append(sql[start:index])
            index += 1
            start = index
        else:
            index += 1
    result.append(sql[start:])
    return [code for code in (strip_comments(s) for s in result) if code]


def strip_comments(statement: str) -> str:
    """``statement`` without the comment lines and blank lines before its first keyword."""
    lines = statement.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def index_created(statement: str) -> str | None:
    """The index a ``CREATE INDEX IF NOT EXISTS`` statement creates, else None."""
    match = _INDEX.match(statement)
    return match.group(1) if match else None


def column_added(statement: str) -> tuple[str, str] | None:
    """(table, column) of a single-column ``ALTER TABLE … ADD COLUMN IF NOT EXISTS``, else None."""
    match = _COLUMN.match(statement)
    if not match or "," in _outside_parentheses(statement[match.end():]):
        return None  # several actions in one ALTER: run it as written
    return match.group(1), match.group(2)


def _outside_parentheses(text: str) -> str:
    depth, kept = 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            kept.append(char)
    return "".join(kept)
