"""Command provider: labels survive the trip through a snapshot name; names never become
shell words; failures are classified."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.contract.backends.command import command_spec

from safesnap.errors import ProviderError
from safesnap_providers.base import SnapshotRequest, managed_labels
from safesnap_providers.command.adapter import CommandProvider, encode_name, parse_name

field = st.from_regex(r"\A[A-Za-z0-9_.]{1,8}(-[A-Za-z0-9_.]{1,8}){0,2}\Z")
moment = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@given(
    plan=field,
    target=field,
    run_id=field,
    kind=st.sampled_from(["nightly", "pre-upgrade", "manual"]),
    created=moment,
    expires=st.none() | moment,
)
def test_name_roundtrip(
    plan: str, target: str, run_id: str, kind: str, created: datetime, expires: datetime | None
) -> None:
    labels = managed_labels(plan=plan, target=target, run_id=run_id, kind=kind, expires_at=expires)
    name = encode_name(labels, created)
    for prefix in ("", "pool/db@", "/srv/snaps/", "vg0 "):
        parsed = parse_name(prefix + name)
        assert parsed is not None
        got_name, got_labels, got_created = parsed
        assert got_name == name
        assert {k: got_labels[k] for k in labels} == labels
        assert got_created == created


@pytest.mark.parametrize(
    "line",
    [
        "",
        "manual-backup",
        "xsafesnap--p--t--20260101T000000Z--nightly--r",
        "safesnap--p--t--2026--nightly--r",
        "safesnap--p--t",
    ],
)
def test_foreign_names_do_not_parse(line: str) -> None:
    assert parse_name(line) is None


@pytest.mark.parametrize("bad", ["a--b", "has space", "semi;colon", "", "-lead"])
def test_unencodable_labels_are_refused(bad: str) -> None:
    labels = managed_labels(plan=bad, target="t", run_id="r", kind="manual")
    with pytest.raises(ProviderError):
        encode_name(labels, datetime.now(UTC))


def test_placeholder_is_one_argument_and_braces_survive(tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    # printf gets the name as ONE argument; awk-style braces in the template stay untouched.
    spec = command_spec(
        tmp_path, create=f'sh -c \'printf "%s|%s" "$1" "{{print}}" > {out}\' _ {{name}}'
    )
    provider = CommandProvider(spec)
    labels = managed_labels(plan="p", target="t", run_id="r-1", kind="manual")
    snap = provider.create_snapshot(SnapshotRequest(source_id="t", name="x", labels=labels))[0]
    assert out.read_text() == f"{snap.id}|{{print}}"


def test_failing_command_is_permanent_with_stderr(tmp_path: Path) -> None:
    spec = command_spec(
        tmp_path, create="sh -c 'echo lvcreate: Volume group vg0 not found >&2; exit 5'"
    )
    labels = managed_labels(plan="p", target="t", run_id="r", kind="manual")
    with pytest.raises(ProviderError) as info:
        CommandProvider(spec).create_snapshot(
            SnapshotRequest(source_id="t", name="x", labels=labels)
        )
    assert not info.value.transient
    assert "exited 5" in info.value.message
    assert "vg0 not found" in info.value.message
    assert list((tmp_path / "snaps").iterdir()) == []


def test_missing_program_is_permanent(tmp_path: Path) -> None:
    spec = command_spec(tmp_path, list="/nonexistent/zfs list")
    with pytest.raises(ProviderError) as info:
        CommandProvider(spec).list_snapshots({})
    assert not info.value.transient


def test_without_a_list_command_it_declares_it_cannot_list(tmp_path: Path) -> None:
    # The run skips snapshot prune on this capability instead of failing every night.
    assert CommandProvider(command_spec(tmp_path)).capabilities().lists_snapshots is True
    no_list = command_spec(tmp_path).model_copy(update={"list": None})
    assert CommandProvider(no_list).capabilities().lists_snapshots is False
