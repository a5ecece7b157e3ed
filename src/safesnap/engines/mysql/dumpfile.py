"""Reading and rewriting a mysqldump/mariadb-dump SQL stream without loading it.

Two jobs, both streaming and line-aligned:

- `RowCounter` counts the rows of every table *in the dump itself* while it is written. These
  counts are exactly what a restore must load back, whatever writers did meanwhile: counting
  with SELECT COUNT(*) in a second session would see a different snapshot than the dump's
  (--single-transaction snapshots cannot be shared between sessions), and verify would then
  fail on any busy database.
- `SectionFilter` rewrites `USE `db`;` lines so a dump made with --databases loads into any
  database name, and drops the sections of databases not being restored.

Facts relied on (checked against mariadb-dump 10.11 output, see docs/how-to/mysql.md): strings
in dumps escape newlines as \\n, so a raw newline never sits inside a value; newer mariadb-dump
writes `INSERT INTO `t` VALUES` alone on a line and then one row per line, older dumps and
MySQL's mysqldump write all rows of a statement on that one line; USE lines stand alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_INSERT = re.compile(
    rb"^(?:INSERT(?: IGNORE)?|REPLACE) INTO `((?:[^`]|``)+)`(?: \([^)]*\))? VALUES ?(.*)$", re.S
)
_USE = re.compile(rb"^USE `((?:[^`\n]|``)+)`;$", re.M)
_USE_HINT = b"USE `"  # cheap substring test before the (slow, per-line-start) regex scan
# A single-quoted SQL string with backslash escapes; possessive so long strings stay linear.
_STRING = re.compile(rb"'(?:[^'\\]++|\\.)*+'", re.S)
_TRAILER = b"-- Dump completed"


def _ident(raw: bytes) -> str:
    return raw.replace(b"``", b"`").decode("utf-8", "surrogateescape")


def _values_rows(values: bytes) -> int:
    """Row tuples in the VALUES part of one line: top-level '(' once strings are removed."""
    if b"'" in values:
        values = _STRING.sub(b"''", values)
    return values.count(b"(")


class RowCounter:
    """Feed dump bytes in any chunking; `counts[db][table]` holds the rows seen."""

    def __init__(self, default_db: str | None = None) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self._db = default_db or ""
        self._table: str | None = None
        self._one_per_line = False  # inside a "VALUES\n(row),\n(row);" statement
        self._rest = b""
        self._tail = b""

    @property
    def completed(self) -> bool:
        """The dump client wrote its closing comment (it only does after a full dump)."""
        return _TRAILER in self._tail

    def feed(self, data: bytes) -> None:
        buf = self._rest + data if self._rest else data
        end = buf.rfind(b"\n") + 1
        self._rest = buf[end:]
        self._tail = (self._tail + data)[-256:]
        pos = 0
        while pos < end:
            if self._one_per_line:
                pos = self._rows_block(buf, pos, end)
                continue
            nl = buf.index(b"\n", pos, end)
            self._line(buf[pos:nl])
            pos = nl + 1

    def close(self) -> None:
        if self._rest:
            self._line(self._rest)
            self._rest = b""

    def _add(self, rows: int) -> None:
        table = self._table or "?"
        per_db = self.counts.setdefault(self._db, {})
        per_db[table] = per_db.get(table, 0) + rows

    def _rows_block(self, buf: bytes, pos: int, end: int) -> int:
        # One row per line and no raw newline inside values: rows = lines, and the statement
        # ends at the first line that ends with ';' (row lines end with ',' otherwise).
        stop = buf.find(b";\n", pos, end)
        if stop < 0:
            self._add(buf.count(b"\n", pos, end))
            return end
        self._add(buf.count(b"\n", pos, stop + 2))
        self._one_per_line = False
        self._table = None
        return stop + 2

    def _line(self, line: bytes) -> None:
        if self._table is not None and not self._one_per_line:
            # Continuation of a multi-line old-style statement (rare: extra_args).
            self._add(_values_rows(line))
            if _STRING.sub(b"", line).rstrip().endswith(b";"):
                self._table = None
            return
        if line.startswith((b"INSERT", b"REPLACE")):
            self._insert(line)
        elif line.startswith(b"USE `"):
            match = _USE.match(line)
            if match:
                self._db = _ident(match[1])

    def _insert(self, line: bytes) -> None:
        match = _INSERT.match(line)
        if not match:
            return
        self._table = _ident(match[1])
        values = match[2]
        if not values.strip():
            self._one_per_line = True
            return
        self._add(_values_rows(values))
        if _STRING.sub(b"", values).rstrip().endswith(b";"):
            self._table = None


class SectionFilter:
    """Rewrite `USE `src`;` to `USE `dst`;` per `mapping`; drop sections of unmapped databases.

    Bytes before the first USE line (session settings) are always kept.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = dict(mapping)
        self._keep = True
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        buf = self._rest + data if self._rest else data
        end = buf.rfind(b"\n") + 1
        self._rest = buf[end:]
        return self._rewrite(buf[:end])

    def close(self) -> bytes:
        rest, self._rest = self._rest, b""
        return self._rewrite(rest)

    def _rewrite(self, block: bytes) -> bytes:
        if _USE_HINT not in block:
            return block if self._keep else b""
        out: list[bytes] = []
        pos = 0
        for match in _USE.finditer(block):
            if self._keep:
                out.append(block[pos : match.start()])
            target = self._mapping.get(_ident(match[1]))
            self._keep = target is not None
            if target is not None:
                out.append(b"USE `" + target.replace("`", "``").encode() + b"`;")
            pos = match.end()
        if self._keep:
            out.append(block[pos:])
        return b"".join(out)
