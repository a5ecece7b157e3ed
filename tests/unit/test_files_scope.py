"""The pure parts of a files target's scope: exclude globs and sidecar names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safesnap.engines.files.scope import excluded, sidecar_of

NAME = st.text(alphabet="abcxyz._-", min_size=1, max_size=8).filter(lambda s: s not in {".", ".."})


@pytest.mark.parametrize(
    ("rel", "patterns", "expected"),
    [
        ("tracker/log/a.log", ["*.log"], True),  # no '/': any depth, by name
        ("tracker/log", ["tracker/log"], True),
        ("tracker/logs", ["tracker/log"], False),
        ("prometheus/data/chunks/000001", ["prometheus/data"], False),  # the walk prunes dirs
        ("prometheus/data/chunks/000001", ["prometheus/*"], True),  # '*' crosses '/'
        ("cache", ["cache"], True),
        ("a/cache", ["cache"], True),
        ("a/cached", ["cache"], False),
        ("a/b.LOG", ["*.log"], False),  # case matters, as on the file system
    ],
)
def test_exclude_examples(rel: str, patterns: list[str], expected: bool) -> None:
    assert excluded(rel, patterns) is expected


@given(st.lists(NAME, min_size=1, max_size=4))
def test_a_name_pattern_matches_its_name_at_any_depth(parts: list[str]) -> None:
    assert excluded("/".join(parts), [parts[-1]])
    assert not excluded("/".join(parts), [])


@given(NAME, st.sampled_from(["-wal", "-shm", "-journal"]))
def test_sidecars_name_their_database(base: str, suffix: str) -> None:
    assert sidecar_of(base + suffix) == base
    assert sidecar_of(suffix) is None
