"""The drill's pure parts: the `[run] drill` cadence, the shared metrics textfile, and the check
of a restored files tree against its manifest (on a real directory)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safesnap.cadence import SLACK, Cadence, drill_due, parse_cadence
from safesnap.errors import IntegrityError
from safesnap.run.drill.checks import check_tree
from safesnap.run.textfile import own_samples, read_lines, rewrite

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", Cadence()),
        ("daily", Cadence(every=1)),
        ("Weekly", Cadence(every=7)),
        ("monthly", Cadence(every=30)),
        ("3d", Cadence(every=3)),
        ("sun", Cadence(weekdays=frozenset({6}))),
        ("mon, Thursday", Cadence(weekdays=frozenset({0, 3}))),
    ],
)
def test_cadences_parse(text: str, expected: Cadence) -> None:
    assert parse_cadence(text) == expected


@pytest.mark.parametrize("text", ["fortnightly", "0d", "400d", "sun,funday", "7"])
def test_bad_cadences_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="weekly"):
        parse_cadence(text)


def test_off_never_drills_and_never_drilled_always_does() -> None:
    assert not drill_due(Cadence(), None, NOW)
    assert drill_due(Cadence(every=7), None, NOW)


@given(days=st.integers(1, 366), hours=st.floats(0, 24 * 400, allow_nan=False))
def test_an_interval_drills_exactly_when_its_days_minus_slack_have_passed(
    days: int, hours: float
) -> None:
    last = NOW - timedelta(hours=hours)
    due = drill_due(Cadence(every=days), last, NOW)
    assert due == (timedelta(hours=hours) >= timedelta(days=days) - SLACK)


def test_a_nightly_timer_firing_a_little_early_still_drills_weekly() -> None:
    last = NOW - timedelta(days=7) + timedelta(minutes=3)
    assert drill_due(Cadence(every=7), last, NOW)
    assert not drill_due(Cadence(every=7), NOW - timedelta(days=1), NOW)


def test_a_clock_set_back_does_not_stop_drills() -> None:
    assert drill_due(Cadence(every=7), NOW + timedelta(days=30), NOW)


@given(offset=st.integers(0, 14 * 24))
def test_weekdays_drill_once_on_each_listed_day(offset: int) -> None:
    now = NOW + timedelta(hours=offset)
    sundays = Cadence(weekdays=frozenset({6}))
    assert drill_due(sundays, None, now) == (now.weekday() == 6)
    earlier = now - timedelta(minutes=1)
    first_today = earlier.date() != now.date()
    assert drill_due(sundays, earlier, now) == (now.weekday() == 6 and first_today)


def test_each_writer_of_the_textfile_keeps_the_others_lines(tmp_path: Path) -> None:
    prom = tmp_path / "safesnap.prom"
    run = {"safesnap_run_success": ("gauge", "run ok")}
    drill = {"safesnap_drill_success": ("gauge", "drill ok")}
    rewrite(prom, "safesnap_run_", run, {'safesnap_run_success{target="a"}': "1"})
    rewrite(prom, "safesnap_drill_", drill, {'safesnap_drill_success{target="a"}': "0"})
    rewrite(prom, "safesnap_run_", run, {'safesnap_run_success{target="b"}': "1"})

    lines = read_lines(prom)
    assert own_samples(lines, "safesnap_run_") == {'safesnap_run_success{target="b"}': "1"}
    assert own_samples(lines, "safesnap_drill_") == {'safesnap_drill_success{target="a"}': "0"}
    assert lines.count("# TYPE safesnap_drill_success gauge") == 1
    assert prom.stat().st_mode & 0o777 == 0o644


def tree_and_manifest(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    tree = tmp_path / "restored"
    (tree / "etc").mkdir(parents=True)
    data = b"[core]\n"
    (tree / "etc" / "tracker.toml").write_bytes(data)
    (tree / "etc" / "current.toml").symlink_to("tracker.toml")
    manifest = {
        "files": {
            "etc/tracker.toml": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        },
        "links": {"etc/current.toml": "tracker.toml"},
    }
    return tree, manifest


def test_a_restored_tree_matching_its_manifest_passes(tmp_path: Path) -> None:
    tree, manifest = tree_and_manifest(tmp_path)
    assert check_tree(tree, manifest, "conf") == len(b"[core]\n")


@pytest.mark.parametrize("damage", ["content", "extra", "missing", "link"])
def test_a_restored_tree_that_differs_fails(tmp_path: Path, damage: str) -> None:
    tree, manifest = tree_and_manifest(tmp_path)
    if damage == "content":
        (tree / "etc" / "tracker.toml").write_bytes(b"[cora]\n")  # same size, other bytes
    elif damage == "extra":
        (tree / "etc" / "stray").write_text("x")
    elif damage == "missing":
        (tree / "etc" / "tracker.toml").unlink()
    else:
        (tree / "etc" / "current.toml").unlink()
        (tree / "etc" / "current.toml").symlink_to("/etc/passwd")
    with pytest.raises(IntegrityError, match="differs from the manifest"):
        check_tree(tree, manifest, "conf")
