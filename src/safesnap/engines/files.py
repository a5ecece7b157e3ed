"""The files engine: a few config files (tracker.toml, .env of the compose stack) as one artifact.

The files are streamed into a tar archive on a writer thread and through the artifact pipeline
(compression, sha256, atomic write), so memory stays bounded. The manifest records each file's
size and sha256, which is what `verify` checks and what a restore can be trusted by. Paths are
stored relative to `/` so a restore into any directory recreates the tree below it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from safesnap import artifacts
from safesnap.engines import BackupContext, BackupOutcome
from safesnap.errors import IntegrityError, RefusedError, SourceError

CHUNK = 1 << 20


class _HashingReader:
    """File wrapper that hashes what tarfile reads from it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data


def collect(paths: list[Path]) -> list[Path]:
    """Every regular file under `paths`, sorted; SourceError for anything missing."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SourceError(f"file(s) to back up not found: {', '.join(missing)}")
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()))
        else:
            found.append(path)
    return found


def _arcname(path: Path) -> str:
    return str(path.resolve()).lstrip("/")


def _write_tar(files: list[Path], sink: BinaryIO, record: dict[str, dict[str, Any]]) -> None:
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tar.gettarinfo(str(path), arcname=_arcname(path))
            with path.open("rb") as raw:
                reader = _HashingReader(raw)
                tar.addfile(info, reader)
            record[info.name] = {"bytes": info.size, "sha256": reader.hash.hexdigest()}


def _progress(ctx: BackupContext) -> Any:
    if ctx.progress is None:
        return None
    report = ctx.progress
    return lambda done: report(done, None)


class FilesEngine:
    name = "files"

    def backup(self, target: Any, ctx: BackupContext) -> BackupOutcome:
        files = collect([Path(p) for p in target.paths])
        record: dict[str, dict[str, Any]] = {}
        read_fd, write_fd = os.pipe()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb") as sink:
                    _write_tar(files, sink, record)
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
                # `record` is filled by the tar thread, complete by the time the manifest is built.
                manifest={
                    "plan": ctx.plan,
                    "run_id": ctx.run_id or None,
                    "files": record,
                    "source": [str(p) for p in target.paths],
                },
                progress=_progress(ctx),
            )
        return BackupOutcome(artifact=info, details={"files": len(record)})

    def quiesce(self, target: Any) -> AbstractContextManager[dict[str, Any]]:  # noqa: ARG002
        return nullcontext({"quiesce": "none (plain files)"})

    def verify(
        self,
        artifact: Path,
        manifest: Mapping[str, Any],
        options: Mapping[str, Any],  # noqa: ARG002
    ) -> dict[str, Any]:
        expected: Mapping[str, Any] = manifest.get("files", {})
        seen: dict[str, str] = {}
        with artifacts.open_decompressed(artifact) as stream:
            for member, content in _members(stream):
                seen[member.name] = _sha256(content)
        bad = sorted(n for n, e in expected.items() if seen.get(n) != e["sha256"])
        extra = sorted(set(seen) - set(expected))
        if bad or extra:
            raise IntegrityError(f"{artifact}: files differ from the manifest: {bad + extra}")
        return {"files": len(seen)}

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
        if dest.exists() and any(dest.iterdir()) and not force:
            raise RefusedError(
                f"{dest} exists and is not empty", hint="Pass --force to replace it."
            )
        self.verify(artifact, manifest, options)
        staging = dest.parent / f".{dest.name}.restore.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, mode=0o700)
        try:
            with (
                artifacts.open_decompressed(artifact) as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                tar.extractall(staging, filter="data")
            _swap_in(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {"restored_to": str(dest), "files": len(manifest.get("files", {}))}


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
                raise SourceError(f"reading the files failed: {self.failure[0]}") from None
        return data


def _members(stream: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            content = tar.extractfile(member)
            if content is not None:
                yield member, content


def _sha256(content: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := content.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _swap_in(staging: Path, dest: Path) -> None:
    old = dest.parent / f".{dest.name}.old.tmp"
    if dest.exists():
        os.rename(dest, old)
    os.rename(staging, dest)
    shutil.rmtree(old, ignore_errors=True)


ENGINE = FilesEngine()
