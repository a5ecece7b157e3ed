"""Operator-supplied commands as a snapshot provider (LVM, ZFS, btrfs, anything with a CLI).

Commands have no labels, so the labels live in the snapshot name:

    safesnap--<plan>--<target>--<YYYYmmddTHHMMSSZ>--<kind>--<run-id>[--x<expires-at>]

`--` separates fields, so no field may contain `--`; every field stays inside the characters
LVM (`[A-Za-z0-9+_.-]`) and ZFS (`[A-Za-z0-9_.:-]`) both accept. `list` parses the names
back into labels and ignores every line that is not such a name, which is also how `delete`
knows a snapshot is safesnap's: it deletes only names that parse *and* that the list command
still shows.

Each command template is split with `shlex.split` first and the placeholders (`{name}`,
`{new_name}`, `{target}`, `{plan}`) are substituted inside the resulting arguments, so a name
can never inject a shell word. No shell runs unless the operator writes one
(`sh -c '... | ...'`), see docs/how-to/command-snapshots.md.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from safesnap.errors import ProviderError, ProviderTimeoutError
from safesnap_providers.base import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    Capabilities,
    Snapshot,
    SnapshotRequest,
    labels_match,
)
from safesnap_providers.command.config import CommandSnapshot
from safesnap_providers.timestamps import parse_stamp, stamp

log = logging.getLogger("safesnap.providers.command")

REGION = "local"
_FIELD = r"[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*"
_NAME_RE = re.compile(
    rf"safesnap--(?P<plan>{_FIELD})--(?P<target>{_FIELD})--(?P<created>\d{{8}}T\d{{6}}Z)"
    rf"--(?P<kind>{_FIELD})--(?P<run_id>{_FIELD})(?:--x(?P<expires>\d{{8}}T\d{{6}}Z))?$"
)
_FIELD_RE = re.compile(rf"^{_FIELD}$")
STDERR_LIMIT = 500  # characters of a failing command's stderr kept in the error message


def encode_name(labels: Mapping[str, str], created: datetime) -> str:
    """The snapshot name carrying `labels`; ProviderError if a label cannot be encoded."""
    fields = [labels.get(k, "") for k in ("plan", "target")]
    fields += [stamp(created)]
    fields += [labels.get(k, "") for k in ("kind", "run-id")]
    for value in fields:
        if not _FIELD_RE.match(value):
            raise ProviderError(
                f"label value {value!r} cannot be part of a command snapshot name",
                hint="Plan, target, kind and run id must use letters, digits, '_', '.' and "
                "single '-' only.",
                provider="command",
            )
    name = "safesnap--" + "--".join(fields)
    if labels.get("expires-at"):
        name += f"--x{labels['expires-at']}"
    return name


def parse_name(line: str) -> tuple[str, dict[str, str], datetime] | None:
    """(name, labels, created) for a line ending in a safesnap snapshot name, else None.

    The name may follow a path or dataset prefix (`pool/db@safesnap--...`, `/snaps/safesnap--...`).
    """
    text = line.strip()
    start = text.rfind("safesnap--")
    if start < 0 or (start > 0 and text[start - 1] not in "/@ \t"):
        return None
    match = _NAME_RE.match(text[start:])
    if match is None:
        return None
    labels = {
        MANAGED_BY_KEY: MANAGED_BY_VALUE,
        "plan": match["plan"],
        "target": match["target"],
        "kind": match["kind"],
        "run-id": match["run_id"],
        "source": match["target"],
    }
    if match["expires"]:
        labels["expires-at"] = match["expires"]
    created = parse_stamp(match["created"])
    return text[start:], labels, created


class CommandProvider:
    name = "command"
    region = REGION
    client_retries: frozenset[str] = frozenset()

    def __init__(self, spec: CommandSnapshot, *, now: Callable[[], datetime] | None = None) -> None:
        self.spec = spec
        self._now = now or (lambda: datetime.now(UTC))

    def capabilities(self) -> Capabilities:
        return Capabilities(
            volume_snapshots=True,
            server_snapshots=False,
            cross_region_copy=False,
            point_in_time_at_request=True,  # LVM/ZFS/btrfs snapshots are atomic when created
            restore_to_volume=self.spec.restore is not None,
            lists_snapshots=self.spec.list is not None,
            notes=("labels are encoded in the snapshot name",),
        )

    def create_snapshot(self, request: SnapshotRequest) -> list[Snapshot]:
        created = self._now().replace(microsecond=0)
        name = encode_name(request.labels, created)
        self._run(
            "create",
            self.spec.create,
            name=name,
            target=request.labels.get("target", ""),
            plan=request.labels.get("plan", ""),
        )
        parsed = parse_name(name)
        assert parsed is not None  # encode_name only builds parseable names
        return [self._snapshot(name, parsed[1], created, request.source_id)]

    def wait(self, snapshot: Snapshot, *, timeout: float) -> Snapshot:
        # The create command returns once the snapshot exists: there is nothing to wait for.
        del timeout
        return snapshot

    def list_snapshots(
        self, labels: Mapping[str, str], *, region: str | None = None
    ) -> list[Snapshot]:
        if region not in (None, REGION):
            return []
        out = []
        for name, found, created in self._listed():
            if labels_match(found, labels):
                out.append(self._snapshot(name, found, created, found["target"]))
        return out

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        if parse_name(snapshot.id) is None:
            raise ProviderError(
                f"refusing to delete {snapshot.id!r}: not a safesnap snapshot name",
                provider=self.name,
                resource_id=snapshot.id,
            )
        if self.spec.delete is None:
            raise ProviderError(
                "no delete command configured",
                provider=self.name,
                hint="Add delete = '...{name}...' to the snapshot table.",
            )
        if self.spec.list is not None and snapshot.id not in {n for n, _, _ in self._listed()}:
            return  # already gone: deleting is idempotent
        self._run("delete", self.spec.delete, name=snapshot.id)

    def copy_to_region(
        self, snapshot: Snapshot, region: str, labels: Mapping[str, str]
    ) -> Snapshot:
        del labels
        raise ProviderError(
            f"command snapshots cannot be copied to another region ({region})",
            provider=self.name,
            resource_id=snapshot.id,
            hint="Replicate the artifacts with [[replicas]] instead.",
        )

    def restore_volume(
        self, snapshot: Snapshot, *, name: str, zone: str | None = None, size: str | None = None
    ) -> str:
        del size  # the restore command decides
        del zone
        if self.spec.restore is None:
            raise ProviderError(
                "no restore command configured",
                provider=self.name,
                hint="Add restore = '...{name}...{new_name}...'.",
            )
        if parse_name(snapshot.id) is None:
            raise ProviderError(
                f"{snapshot.id!r} is not a safesnap snapshot name",
                provider=self.name,
                resource_id=snapshot.id,
            )
        self._run("restore", self.spec.restore, name=snapshot.id, new_name=name)
        return name

    # -- internals ----------------------------------------------------------------------------

    def _snapshot(
        self, name: str, labels: dict[str, str], created: datetime, source: str
    ) -> Snapshot:
        return Snapshot(
            id=name,
            source_id=source,
            region=REGION,
            state="completed",
            created_at=created,
            labels=labels,
            name=name,
        )

    def _listed(self) -> list[tuple[str, dict[str, str], datetime]]:
        if self.spec.list is None:
            raise ProviderError(
                "no list command configured",
                provider=self.name,
                hint="Add list = '...' printing one snapshot name per line.",
            )
        stdout = self._run("list", self.spec.list)
        return [p for p in (parse_name(line) for line in stdout.splitlines()) if p is not None]

    def _run(self, what: str, template: str, **values: str) -> str:
        args = [_substitute(arg, values) for arg in shlex.split(template)]
        log.debug("command %s: %s", what, shlex.join(args))
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=self.spec.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ProviderTimeoutError(
                f"{what} command did not finish within {self.spec.timeout:.0f}s",
                provider=self.name,
                transient=True,
                resource_id=values.get("name"),
            ) from None
        except OSError as exc:
            raise ProviderError(
                f"{what} command could not start: {exc.strerror}",
                provider=self.name,
                hint=f"Check the {what} command path.",
            ) from None
        if done.returncode != 0:
            raise ProviderError(
                f"{what} command exited {done.returncode}: {done.stderr.strip()[:STDERR_LIMIT]}",
                provider=self.name,
                resource_id=values.get("name"),
            )
        return done.stdout


def _substitute(arg: str, values: Mapping[str, str]) -> str:
    # Plain replacement, not str.format: operator commands contain braces of their own
    # (awk '{print $1}', find -exec {} \;).
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def from_settings(
    config: object | None,
    spec: CommandSnapshot,
    *,
    env_file: Path | None = None,
    region: str | None = None,
) -> CommandProvider:
    """`config` is unused: commands have no [providers] section; everything is in `spec`."""
    del config, env_file, region
    return CommandProvider(spec)
