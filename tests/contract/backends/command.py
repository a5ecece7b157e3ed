"""The command provider driving real programs (cp, ls, rm) on a temp directory, the way an
operator drives lvcreate/zfs/btrfs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from shlex import quote

from safesnap_providers.command.adapter import CommandProvider
from safesnap_providers.command.config import CommandSnapshot
from tests.contract.harness import ProviderHarness


def command_spec(root: Path, **overrides: object) -> CommandSnapshot:
    src, snaps, restored = root / "src", root / "snaps", root / "restored"
    for d in (src, snaps, restored):
        d.mkdir(parents=True, exist_ok=True)
    (src / "db.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    fields: dict[str, object] = {
        "provider": "command",
        "create": f"cp -r {quote(str(src))} {quote(str(snaps))}/{{name}}",
        "list": f"ls -1 {quote(str(snaps))}",
        "delete": f"rm -rf {quote(str(snaps))}/{{name}}",
        "restore": f"cp -r {quote(str(snaps))}/{{name}} {quote(str(restored))}/{{new_name}}",
        "timeout": 10,
    }
    fields.update(overrides)
    return CommandSnapshot.model_validate(fields)


def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    provider = CommandProvider(command_spec(tmp_path))
    snaps, restored = tmp_path / "snaps", tmp_path / "restored"

    def foreign() -> str:
        (snaps / "before-upgrade-by-hand").mkdir()
        return "before-upgrade-by-hand"

    def hung() -> CommandProvider:
        return CommandProvider(command_spec(tmp_path, list="sleep 5", timeout=0.3))

    def world() -> object:
        # What the operator's programs keep: the snapshot and restore directories.
        return sorted(str(p.relative_to(tmp_path)) for d in (snaps, restored) for p in d.rglob("*"))

    yield ProviderHarness(
        provider=provider,
        make_source=lambda: ("db", "volume"),
        region="local",
        other_region="elsewhere",
        extras={
            "make_foreign_snapshot": foreign,
            "exists": lambda snapshot_id: (snaps / snapshot_id).exists(),
            "unreachable": hung,
            "world": world,
        },
    )
