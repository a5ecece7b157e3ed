"""The dump-stream row counter and USE rewriter on both dump layouts, any chunking."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from safesnap.engines.mysql.dumpfile import RowCounter, SectionFilter

# mariadb-dump 10.11: rows one per line; MySQL mysqldump / older MariaDB: one line per statement.
NEW = (
    b"/*M!999999\\- enable the sandbox mode */ \n"
    b"USE `a`;\n"
    b"INSERT INTO `t` VALUES\n(1,'x),(y'),\n(2,'it\\'s \\\\'),\n(3,'semi;\\n');\n"
    b"INSERT INTO `t` VALUES\n(4,NULL);\n"
    b"USE `b``q`;\n"
    b"INSERT INTO `u` VALUES\n(0x28,'(');\n"
    b"-- Dump completed on 2026-01-01\n"
)
OLD = (
    b"USE `a`;\n"
    b"INSERT INTO `t` VALUES (1,'x),(y'),(2,'it\\'s \\\\'),(3,'semi;\\n');\n"
    b"INSERT INTO `t` VALUES (4,NULL);\n"
    b"USE `b``q`;\n"
    b"INSERT INTO `u` VALUES (0x28,'(');\n"
    b"-- Dump completed on 2026-01-01\n"
)
EXPECTED = {"a": {"t": 4}, "b`q": {"u": 1}}


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([NEW, OLD]), st.lists(st.integers(0, 10_000), max_size=30))
def test_counts_do_not_depend_on_chunking(dump: bytes, cuts: list[int]) -> None:
    counter = RowCounter()
    for piece in chunks(dump, cuts):
        counter.feed(piece)
    counter.close()
    assert counter.counts == EXPECTED
    assert counter.completed


def test_truncated_dump_is_not_completed() -> None:
    counter = RowCounter()
    counter.feed(NEW[: NEW.index(b"-- Dump")])
    counter.close()
    assert not counter.completed


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([NEW, OLD]), st.lists(st.integers(0, 10_000), max_size=30))
def test_section_filter_renames_and_drops(dump: bytes, cuts: list[int]) -> None:
    section = SectionFilter({"a": "restored"})
    out = b"".join(section.feed(p) for p in chunks(dump, cuts)) + section.close()
    assert b"USE `restored`;" in out
    assert b"`u`" not in out and b"USE `b" not in out  # the other database's section is gone
    assert out.startswith(dump[: dump.index(b"USE")])  # settings before the first USE are kept
    counter = RowCounter()
    counter.feed(out)
    counter.close()
    assert counter.counts == {"restored": {"t": 4}}
