"""Snapshot pruning rules (safesnap.snapshots.ops.plan_prune and prune_target)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from safesnap.errors import ProviderError
from safesnap.retention import Policy
from safesnap.snapshots.ops import PruneOutcome, _delete, cap_warnings, plan_prune
from safesnap_providers.base import Snapshot, managed_labels
from safesnap_providers.testing.memory import MemoryProvider

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STAMP = "%Y%m%dT%H%M%SZ"


def snap(
    run: str,
    age_days: float,
    *,
    kind: str = "nightly",
    state: str = "completed",
    expires: datetime | None = None,
    source: str = "vol-1",
    managed: bool = True,
) -> Snapshot:
    labels = managed_labels(plan="p", target="db", run_id=run, kind=kind, expires_at=expires)
    if not managed:
        labels = {"owner": "ops"}
    return Snapshot(
        id=f"snap-{run}-{source}",
        source_id=source,
        region="r",
        state=state,  # type: ignore[arg-type]
        created_at=NOW - timedelta(days=age_days),
        labels=labels,
    )


def test_keep_last_deletes_older_nightly_runs_as_whole_sets() -> None:
    snaps = [snap(f"r{i}", i, source=v) for i in range(5) for v in ("vol-1", "vol-2")]
    delete, reasons = plan_prune(snaps, Policy(keep_last=2), NOW)
    assert delete == {"r2", "r3", "r4"}
    assert "last 2" in reasons["r0"]


def test_newest_completed_run_survives_expiry_and_empty_policy() -> None:
    expired = NOW - timedelta(days=1)
    snaps = [snap("old", 9, expires=expired), snap("new", 2, expires=expired)]
    delete, reasons = plan_prune(snaps, Policy(), NOW)
    assert delete == {"old"}
    assert "newest completed run" in reasons["new"]


def test_pre_upgrade_kept_until_expiry_then_deleted() -> None:
    future, past = NOW + timedelta(days=3), NOW - timedelta(minutes=1)
    snaps = [
        snap("n", 0),
        snap("keep", 30, kind="pre-upgrade", expires=future),
        snap("gone", 40, kind="pre-upgrade", expires=past),
        snap("forever", 50, kind="manual"),
    ]
    delete, reasons = plan_prune(snaps, Policy(keep_last=1), NOW)
    assert delete == {"gone"}
    assert reasons["keep"][0].startswith("pre-upgrade: kept until")


def test_orphans_are_deleted_in_progress_runs_are_not() -> None:
    snaps = [
        snap("n", 0),
        snap("crashed", 3, state="pending"),
        snap("broken", 0.1, state="error"),
        snap("running", 0.01, state="pending"),
    ]
    delete, reasons = plan_prune(snaps, Policy(keep_last=5), NOW)
    assert delete == {"crashed", "broken"}
    assert reasons["running"] == ["in progress"]


def test_provider_protected_runs_are_kept_until_expiry() -> None:
    from dataclasses import replace

    future, past = NOW + timedelta(days=1), NOW - timedelta(days=1)
    snaps = [
        snap("n", 0),
        replace(snap("locked", 10), protected=True),
        replace(snap("locked-exp", 11, expires=future), protected=True),
        replace(snap("unlocked", 12, expires=past), protected=True),
        snap("plain", 13),
    ]
    delete, reasons = plan_prune(snaps, Policy(keep_last=1), NOW)
    assert delete == {"unlocked", "plain"}
    assert "delete protection, not expired" in reasons["locked"]


runs = st.lists(
    st.tuples(
        st.floats(0, 400),
        st.sampled_from(["nightly", "pre-upgrade", "manual"]),
        st.sampled_from(["completed", "pending", "error"]),
        st.none() | st.floats(-50, 50),
        st.booleans(),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(runs=runs, keep_last=st.integers(0, 3), keep_daily=st.integers(0, 5))
def test_safety_rules_hold_for_any_history(runs: list, keep_last: int, keep_daily: int) -> None:  # type: ignore[type-arg]
    snaps = [
        snap(
            f"r{i}",
            age,
            kind=kind,
            state=state,
            managed=managed,
            expires=None if exp is None else NOW + timedelta(days=exp),
        )
        for i, (age, kind, state, exp, managed) in enumerate(runs)
    ]
    delete, _ = plan_prune(snaps, Policy(keep_last=keep_last, keep_daily=keep_daily), NOW)
    by_run = {s.labels.get("run-id", s.id): s for s in snaps}
    for run_id in delete:
        s = by_run[run_id]
        assert s.managed  # unlabelled snapshots are never deleted
        if s.labels["kind"] == "pre-upgrade" and s.state == "completed":
            exp = s.labels.get("expires-at")
            assert exp is not None
            assert datetime.strptime(exp, STAMP).replace(tzinfo=UTC) <= NOW  # only once expired
    completed = [s for s in snaps if s.managed and s.state == "completed"]
    if completed:
        newest = max(completed, key=lambda s: (s.created_at, s.labels["run-id"]))
        assert newest.labels["run-id"] not in delete


def test_cap_warning_near_digitalocean_limit() -> None:
    snaps = [snap(f"r{i}", i) for i in range(23)]
    assert cap_warnings(snaps, 25, "digitalocean") == [
        "vol-1 has 23 snapshots; digitalocean allows 25 per volume"
    ]
    assert cap_warnings(snaps[:20], 25, "digitalocean") == []
    assert cap_warnings(snaps, None, "aws") == []


def test_failed_delete_is_reported_and_kept() -> None:
    mem = MemoryProvider(pending_polls=0)
    s = mem.add_snapshot(snap("x", 5))
    mem.fail_next(ProviderError("IncorrectState"), method="delete_snapshot")
    out = PruneOutcome("db", dry_run=False)
    _delete(mem, s, out)
    assert out.deleted == []
    assert out.kept == [s.id]
    assert out.errors == [f"{s.id}: IncorrectState"]
    assert [x.id for x in mem.all_snapshots()] == [s.id]


def test_prune_target_deletes_orphans_and_never_unlabelled_snapshots(tmp_path: Path) -> None:
    # The clock is the test's NOW, as for every snapshot above: ages are relative to it.
    from safesnap.config.plan import load_plan
    from safesnap.snapshots.ops import prune_target

    state = tmp_path / "cloud.json"
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        f'plan = "p"\n[destination]\npath = "{tmp_path / "d"}"\n[[targets]]\nname = "db"\n'
        f'path = "{tmp_path / "db.sqlite"}"\n'
        f'snapshot = {{ provider = "memory", state_file = "{state}" }}\n'
    )
    plan = load_plan(plan_file, env_file=tmp_path / "none.env")
    mem = MemoryProvider(state_file=state, pending_polls=0, region="r")
    for s in (
        snap("ok", 40),
        snap("stuck", 2, state="pending"),
        snap("young", 0.01, state="pending"),
        snap("err", 0.01, state="error"),
        snap("mine", 40, managed=False),
    ):
        mem.add_snapshot(s)
    out = prune_target(plan, plan.targets[0], now=NOW, provider=mem)
    assert set(out.deleted) == {"snap-stuck-vol-1", "snap-err-vol-1"}
    assert {s.id for s in mem.all_snapshots()} == {
        "snap-ok-vol-1",
        "snap-young-vol-1",
        "snap-mine-vol-1",
    }


def test_regions_of_asks_the_default_region_when_the_provider_names_none() -> None:
    from types import SimpleNamespace

    from safesnap.snapshots.ops import regions_of
    from safesnap_providers.digitalocean.config import DigitalOceanSnapshot

    spec = DigitalOceanSnapshot(provider="digitalocean", droplet_id=1, copy_to=["fra1"])
    unnamed = SimpleNamespace(region=None)
    assert regions_of(unnamed, spec) == [None, "fra1"]  # type: ignore[arg-type]
    named = SimpleNamespace(region="nyc3")
    assert regions_of(named, spec) == ["nyc3", "fra1"]  # type: ignore[arg-type]
    assert regions_of(named, spec, "sfo3") == ["sfo3"]  # type: ignore[arg-type]
