"""The files engine: a few config files (tracker.toml, .env of the compose stack) as one artifact.

The files are streamed into a tar archive on a writer thread and through the artifact pipeline
(compression, sha256, atomic write), so memory stays bounded. The manifest records each file's
size and sha256 and each symlink's target, which is what `verify` checks and what a restore can
be trusted by. Paths are stored relative to `/` so a restore into any directory recreates the
tree below it. What is stored (symlinks, skipped special files): engines/files_walk.py; how it
is read back and extracted without escaping the restore directory: engines/files_extract.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO, cast

from safesnap.artifacts import store as artifacts
from safesnap.artifacts.atomic import fsync_dir
from safesnap.artifacts.destination import destination_error, make_private_dirs, writing_to
from safesnap.config.targets import FilesTarget
from safesnap.engines import BackupContext, BackupOutcome
from safesnap.engines.files.extract import Contents, extract, read_contents
from safesnap.engines.files.scope import Scope, covered_paths, mysql_target_names
from safesnap.engines.files.walk import Collection, collect, write_tar
from safesnap.errors import IntegrityError, RefusedError, SafesnapError, SourceError
from safesnap.output import log


def _progress(ctx: BackupContext) -> Any:
    if ctx.progress is None:
        return None
    report = ctx.progress
    return lambda done: report(done, None)


class FilesEngine:
    name = "files"

    def backup(self, target: FilesTarget, ctx: BackupContext) -> BackupOutcome:
        found = collect([Path(p) for p in target.paths], _scope(target, ctx))
        files: dict[str, dict[str, Any]] = {}
        links: dict[str, str] = {}
        read_fd, write_fd = os.pipe()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb") as sink:
                    write_tar(found, sink, files, links)
            except BaseException as exc:  # reported by the consumer below
                failure.append(exc)

        writer = threading.Thread(target=produce, name="files-tar", daemon=True)
        writer.start()
        with os.fdopen(read_fd, "rb") as source:
            info = artifacts.write_artifact(
                cast(BinaryIO, _FailingSource(source, failure, writer)),
                ctx.dest,
                target=target.name,
                engine=self.name,
                ext="tar",
                compression=ctx.compression,
                level=ctx.level,
                threads=ctx.threads,
                kind=ctx.kind,
                # `files`, `links` and `found.skipped` are filled by the tar thread, complete by
                # the time the manifest is built (the source's end of input joins the thread).
                manifest={
                    "plan": ctx.plan,
                    "run_id": ctx.run_id or None,
                    "files": files,
                    "links": links,
                    "skipped": found.skipped,
                    "source": [str(p) for p in target.paths],
                    "exclude": target.exclude,
                    "excluded": found.excluded,
                    "live_databases": target.live_databases,
                },
                progress=_progress(ctx),
            )
        return BackupOutcome(artifact=info, details=_details(files, links, found, target.name))

    def quiesce(self, target: FilesTarget) -> AbstractContextManager[dict[str, Any]]:  # noqa: ARG002
        return nullcontext({"quiesce": "none (plain files)"})

    def verify(
        self,
        artifact: Path,
        manifest: Mapping[str, Any],
        options: Mapping[str, Any],  # noqa: ARG002
    ) -> dict[str, Any]:
        with artifacts.open_decompressed(artifact) as stream:
            contents = read_contents(artifact.name, stream)
        _compare(artifact, manifest, contents)
        return {"files": len(contents.files), "symlinks": len(contents.links)}

    def restore(
        self,
        artifact: Path,
        manifest: Mapping[str, Any],
        to: str,
        *,
        force: bool,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        dest = Path(to)
        _refuse_overwrite(dest, force)
        self.verify(artifact, manifest, options)  # a bad archive fails before anything is made
        parent = make_private_dirs(dest.parent)
        with writing_to(parent, doing="create a staging directory in"):
            # mkdtemp: 0700, a random name, so two restores never share (or delete) one.
            staging = Path(
                tempfile.mkdtemp(prefix=f".{dest.name}.restore.", suffix=".tmp", dir=parent)
            )
        try:
            with artifacts.open_decompressed(artifact) as stream:
                contents = extract(artifact.name, stream, staging)
            _refuse_overwrite(dest, force)  # again: it may have appeared meanwhile
            _swap_in(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # never follows the links inside
        return {
            "restored_to": str(dest),
            "files": len(contents.files),
            "symlinks": len(contents.links),
        }


def _scope(target: FilesTarget, ctx: BackupContext) -> Scope:
    return Scope(
        exclude=tuple(target.exclude),
        covered=covered_paths(ctx.others, ctx.destination),
        mysql_targets=mysql_target_names(ctx.others),
        copy_live=target.live_databases == "copy",
    )


def _details(
    files: Mapping[str, Any], links: Mapping[str, Any], found: Collection, target: str
) -> dict[str, Any]:
    """Counts for the run report (scalars only); the skipped names go to the log and the
    manifest's `skipped` list."""
    details: dict[str, Any] = {
        "files": len(files),
        "symlinks": len(links),
        "skipped": len(found.skipped),
        "excluded": found.excluded,
    }
    for reason, count in sorted(found.skipped_counts().items()):
        details[f"skipped_{reason.replace(' ', '_')}"] = count
    covered = [i["path"] for i in found.skipped if i["reason"].startswith("covered:")]
    if covered:  # the report names them: the operator sees the layered scope at work
        details["covered_paths"] = ", ".join(covered[:10]) + (" ..." if len(covered) > 10 else "")
    if found.copied_live:
        details["live_databases_copied"] = len(found.copied_live)
        for path in found.copied_live[:20]:
            log.warning("%s: archived live database %s as plain bytes", target, path)
    for item in found.skipped[:20]:
        # Left out because another target covers it is the plan working, not a problem.
        level = log.info if item["reason"].startswith("covered:") else log.warning
        level("%s: skipped %s (%s)", target, item["path"], item["reason"])
    return details


def _compare(artifact: Path, manifest: Mapping[str, Any], contents: Contents) -> None:
    expected_files: Mapping[str, Any] = manifest.get("files", {})
    expected_links: Mapping[str, Any] = manifest.get("links", {})
    actual = {n: {"bytes": b, "sha256": h} for n, (b, h) in contents.files.items()}
    bad = {
        n
        for n in set(expected_files) | set(actual)
        if actual.get(n) != _record(expected_files.get(n))
    }
    bad |= {
        n
        for n in set(expected_links) | set(contents.links)
        if contents.links.get(n) != expected_links.get(n)
    }
    if bad:
        names = sorted(bad)
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise IntegrityError(f"{artifact.name}: files differ from the manifest: {shown}")


def _record(entry: Any) -> dict[str, Any] | None:
    return None if entry is None else {"bytes": entry["bytes"], "sha256": entry["sha256"]}


def _refuse_overwrite(dest: Path, force: bool) -> None:
    """An existing file, link or non-empty directory at --to needs --force (exit 7)."""
    if not os.path.lexists(dest) or force:
        return
    if dest.is_symlink() or not dest.is_dir():
        raise RefusedError(
            f"{dest} exists and is not a directory", hint="Pass --force to replace it."
        )
    if any(dest.iterdir()):
        raise RefusedError(f"{dest} exists and is not empty", hint="Pass --force to replace it.")


def _swap_in(staging: Path, dest: Path) -> None:
    """Rename the finished tree into place; a replaced one is moved aside first and put back
    if the rename fails, then removed (a file or link is unlinked, never followed)."""
    old = dest.parent / f".{dest.name}.old.{secrets.token_hex(4)}.tmp"
    had_old = os.path.lexists(dest)
    try:
        if had_old:
            os.rename(dest, old)
        try:
            os.rename(staging, dest)
        except OSError:
            if had_old:
                os.rename(old, dest)
            raise
        fsync_dir(dest.parent)  # the new entry survives a power cut
    except OSError as exc:
        raise destination_error(exc, dest, doing="move the restored tree to") from None
    if had_old:
        _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class _FailingSource:
    """Reader over the pipe that turns a failure on the tar thread into a SourceError, so
    write_artifact discards its temp file instead of publishing a truncated archive."""

    def __init__(self, raw: BinaryIO, failure: list[BaseException], writer: threading.Thread):
        self.raw, self.failure, self.writer = raw, failure, writer

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if not data:
            self.writer.join(timeout=60)
            if self.failure:
                error = self.failure[0]
                if isinstance(error, SafesnapError):
                    raise error
                raise SourceError(f"reading the files failed: {error}") from None
        return data


ENGINE = FilesEngine()
