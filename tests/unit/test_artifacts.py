"""Artifacts on real files: names, manifest, permissions, streaming, crashes, corruption."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fixtures.artifacts import MakeArtifact, flip_byte, visible

from safesnap import __version__
from safesnap.artifacts.atomic import atomic_write
from safesnap.artifacts.catalog import sweep_temporaries
from safesnap.artifacts.codecs import CHUNK
from safesnap.artifacts.store import (
    MANIFEST_FORMAT,
    artifact_name,
    decompress_to,
    manifest_path_for,
    open_decompressed,
    read_manifest,
    write_artifact,
)
from safesnap.errors import ArtifactError, ConfigError, IntegrityError, RefusedError

T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
CODECS = ["zstd", "gzip", "xz", "none"]


def test_name_shape_and_order() -> None:
    name = artifact_name("tracker", T0, "nightly", "sqlite", "zstd")
    assert name == "tracker.20260304T050607Z.nightly.sqlite.zst"
    later = artifact_name("tracker", T0.replace(hour=6), "nightly", "sqlite", "zstd")
    same_second = artifact_name("tracker", T0, "nightly", "sqlite", "zstd", seq=1)
    assert sorted([later, same_second, name]) == [name, same_second, later]
    assert artifact_name("t", T0, "manual", "sql", "none") == "t.20260304T050607Z.manual.sql"


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "sp ace"])
def test_name_parts_are_validated(bad: str) -> None:
    with pytest.raises(ConfigError):
        artifact_name(bad, T0, "manual", "sqlite", "zstd")


@pytest.mark.parametrize("codec", CODECS)
def test_write_read_round_trip(tmp_path: Path, codec: str) -> None:
    data = os.urandom(300_000) + b"\0" * 700_000
    info = write_artifact(
        io.BytesIO(data), tmp_path, target="db", engine="sqlite", ext="sqlite",
        compression=codec, kind="nightly", created_at=T0,
        manifest={"journal_mode": "wal", "plan": "p1", "run_id": "r1", "sha256": "forged"},
    )  # fmt: skip
    assert info.path.name == artifact_name("db", T0, "nightly", "sqlite", codec)
    assert visible(tmp_path) == sorted([info.path.name, info.manifest_path.name])
    m = read_manifest(info.path)
    assert m == json.loads(info.manifest_path.read_text()) == dict(info.manifest)
    assert m["format"] == MANIFEST_FORMAT
    assert (m["artifact"], m["target"], m["engine"], m["kind"]) == (
        info.path.name, "db", "sqlite", "nightly",
    )  # fmt: skip
    assert m["created_at"] == "2026-03-04T05:06:07.891011Z"
    assert m["finished_at"] >= m["created_at"]
    assert (m["compression"], m["tool_version"], m["verified"]) == (codec, __version__, False)
    assert m["bytes"] == info.path.stat().st_size == info.bytes
    assert m["source_bytes"] == len(data)
    assert m["sha256"] != "forged"  # engine extras cannot override computed fields
    assert (m["journal_mode"], m["plan"], m["run_id"]) == ("wal", "p1", "r1")
    for key in ("source", "source_sha256", "integrity_check", "integrity_result"):
        assert key in m
    with open_decompressed(info.path) as reader:
        assert reader.read() == data
    out = decompress_to(info.path, tmp_path / "restored")
    assert out.read_bytes() == data


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_threaded_zstd_round_trip_and_checksums(tmp_path: Path, threads: int) -> None:
    # Several zstd jobs (8 MiB each at level 3) so that two workers really share the input.
    data = b"".join(os.urandom(2048) + bytes(2048) for _ in range(5000))  # ~20 MiB, ratio ~0.5
    info = write_artifact(
        io.BytesIO(data), tmp_path, target="db", engine="sqlite", ext="sqlite",
        compression="zstd", threads=threads, created_at=T0,
    )  # fmt: skip
    m = read_manifest(info.path)
    assert m["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert m["source_bytes"] == len(data)
    assert m["sha256"] == hashlib.sha256(info.path.read_bytes()).hexdigest() == info.sha256
    assert m["bytes"] == info.path.stat().st_size < len(data) * 0.6
    out = decompress_to(info.path, tmp_path / "restored")  # checks both sha256s on the way
    assert out.read_bytes() == data
    # An independent decoder agrees (the frame is standard zstd, with its own checksum).
    blob = info.path.read_bytes()
    assert zstandard.get_frame_parameters(blob).has_checksum
    assert zstandard.ZstdDecompressor().decompressobj().decompress(blob) == data


@pytest.mark.parametrize("threads", [-1, 17])
def test_threads_out_of_range_is_a_config_error(tmp_path: Path, threads: int) -> None:
    with pytest.raises(ConfigError, match="threads"):
        write_artifact(
            io.BytesIO(b"x"), tmp_path, target="db", engine="sqlite", ext="sqlite",
            threads=threads,
        )  # fmt: skip
    assert visible(tmp_path) == []


@pytest.mark.parametrize("codec", ["gzip", "xz", "none"])
def test_other_codecs_ignore_threads(tmp_path: Path, codec: str) -> None:
    info = write_artifact(
        io.BytesIO(b"abc" * 1000), tmp_path, target="db", engine="sqlite", ext="sqlite",
        compression=codec, threads=4,
    )  # fmt: skip
    with open_decompressed(info.path) as reader:
        assert reader.read() == b"abc" * 1000


def test_files_are_0600(tmp_path: Path, make_artifact: MakeArtifact) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        info = make_artifact(dest=tmp_path)
        out = decompress_to(info.path, tmp_path / "out")
    finally:
        os.umask(old)
    for path in (info.path, info.manifest_path, out):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_same_second_gets_a_suffix_not_an_overwrite(make_artifact: MakeArtifact) -> None:
    first = make_artifact(b"first", created_at=T0)
    second = make_artifact(b"second", created_at=T0)
    assert second.path.name == first.path.name.replace("Z.", "Z_1.", 1)
    with open_decompressed(first.path) as r:
        assert r.read() == b"first"
    with open_decompressed(second.path) as r:
        assert r.read() == b"second"


class CountingSource(io.RawIOBase):
    """Produces `total` bytes lazily, records the largest read asked for."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.largest = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.largest = max(self.largest, len(buffer))
        n = min(len(buffer), self.left)
        buffer[:n] = b"z" * n
        self.left -= n
        return n

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "write_artifact must never read everything at once"
        return super().read(size) or b""


def test_streams_in_bounded_chunks_with_progress(tmp_path: Path) -> None:
    total = 20 * CHUNK + 123
    source = CountingSource(total)
    seen: list[int] = []
    info = write_artifact(
        source,
        tmp_path,
        target="db",
        engine="sqlite",
        ext="sqlite",
        progress=seen.append,  # type: ignore[arg-type]
    )
    assert source.largest <= CHUNK
    assert seen == sorted(seen)
    assert seen[-1] == total == info.source_bytes
    assert len(seen) >= 20


class FailingSource(io.RawIOBase):
    def __init__(self, after: int) -> None:
        self.after = after

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.after <= 0:
            raise OSError("dump process died")
        self.after -= 1
        return os.urandom(min(size, 65536))


@pytest.mark.parametrize("codec", CODECS)
def test_source_failure_leaves_nothing(tmp_path: Path, codec: str) -> None:
    with pytest.raises(OSError, match="dump process died"):
        write_artifact(FailingSource(5), tmp_path, target="db", engine="sqlite", ext="sqlite",  # type: ignore[arg-type]
                       compression=codec)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # no artifact, no manifest, no temp


SLOW_WRITER = """
import io, os, sys, time
from pathlib import Path
from safesnap.artifacts.store import write_artifact
class Slow(io.RawIOBase):
    def readable(self): return True
    def read(self, size=-1):
        time.sleep(0.01)
        return os.urandom(65536)
write_artifact(Slow(), Path(sys.argv[1]), target="db", engine="sqlite", ext="sqlite")
"""


def _wait_for_temp(dest: Path, proc: subprocess.Popen[bytes]) -> Path:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # bounded by time
        temps = [p for p in dest.glob(".*.tmp") if p.stat().st_size > 0]
        if temps:
            return temps[0]
        assert proc.poll() is None, "writer exited early"
        time.sleep(0.05)
    raise AssertionError("writer never produced a temp file")


def test_sigkill_mid_write_leaves_only_a_sweepable_temp(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(dest)])
    try:
        temp = _wait_for_temp(dest, proc)
        # While the writer lives, its flock protects the temp from a sweep.
        assert sweep_temporaries(dest).removed == []
        assert temp.exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert visible(dest) == []  # no artifact, no manifest
    assert temp.exists()
    assert stat.S_IMODE(temp.stat().st_mode) == 0o600
    # The kernel dropped the dead writer's flock: swept at once, no age to wait out.
    assert sweep_temporaries(dest).removed == [temp]
    assert list(dest.iterdir()) == []


FULL_DISK = """
import io, os, resource, signal, sys
from pathlib import Path
from safesnap.artifacts.store import write_artifact
from safesnap.errors import ArtifactError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG as an error, not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    write_artifact(io.BytesIO(os.urandom(4 << 20)), Path(sys.argv[1]), target="db",
                   engine="sqlite", ext="sqlite", compression="none")
except ArtifactError as exc:
    print(exc.message)
    sys.exit(42)
"""


def test_destination_failure_is_artifact_error_and_leaves_nothing(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes the kernel refuse writes past 1 MiB (EFBIG), like a full volume.
    dest = tmp_path / "dest"
    res = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(dest)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 42, res.stderr
    assert "cannot write the artifact" in res.stdout
    assert "File too large" in res.stdout
    assert list(dest.iterdir()) == []


def test_flipped_byte_fails_with_clear_message(make_artifact: MakeArtifact) -> None:
    info = make_artifact(os.urandom(50_000))
    flip_byte(info.path, 1000)
    with pytest.raises(IntegrityError) as err, open_decompressed(info.path) as r:
        r.read()
    assert info.path.name in err.value.message
    assert "mismatch" in err.value.message or "damaged" in err.value.message


def test_damage_is_found_even_if_reader_stops_early(make_artifact: MakeArtifact) -> None:
    info = make_artifact(os.urandom(200_000), compression="none")
    flip_byte(info.path, -1)
    with pytest.raises(IntegrityError, match="sha256 mismatch"), open_decompressed(info.path) as r:
        r.read(10)


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_artifact_is_integrity_error(make_artifact: MakeArtifact, codec: str) -> None:
    info = make_artifact(os.urandom(100_000), compression=codec)
    info.path.write_bytes(info.path.read_bytes()[:-100])
    with pytest.raises(IntegrityError), open_decompressed(info.path) as r:
        r.read()


def test_decompress_to_keeps_existing_file_when_artifact_is_bad(
    tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    info = make_artifact(os.urandom(50_000))
    flip_byte(info.path, -20)
    out = tmp_path / "live.db"
    out.write_bytes(b"precious")
    with pytest.raises(IntegrityError):
        decompress_to(info.path, out)
    assert out.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []


def test_read_manifest_rejects_what_is_not_a_backup(
    tmp_path: Path, make_artifact: MakeArtifact
) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        read_manifest(tmp_path / "nope.zst")
    loose = tmp_path / "db.20260101T000000Z.manual.sqlite.zst"
    loose.write_bytes(b"x")
    with pytest.raises(ArtifactError, match="no manifest"):
        read_manifest(loose)
    info = make_artifact()
    info.manifest_path.write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        read_manifest(info.path)
    info.manifest_path.write_text(json.dumps({"format": "other/1"}))
    with pytest.raises(ArtifactError, match="not a safesnap-manifest/1"):
        read_manifest(info.path)
    other = make_artifact(b"other", target="other")
    manifest_path_for(info.path).write_bytes(other.manifest_path.read_bytes())
    with pytest.raises(ArtifactError, match="describes"):
        read_manifest(info.path)


def test_manifest_path_is_accepted_as_artifact(make_artifact: MakeArtifact) -> None:
    info = make_artifact()
    assert read_manifest(info.manifest_path)["artifact"] == info.path.name


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=3 * CHUNK // 2), codec=st.sampled_from(CODECS))
def test_any_bytes_round_trip_with_matching_hashes(data: bytes, codec: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        info = write_artifact(
            io.BytesIO(data), Path(tmp), target="db", engine="sqlite", ext="sqlite",
            compression=codec,
        )  # fmt: skip
        assert info.manifest["source_sha256"] == hashlib.sha256(data).hexdigest()
        assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
        with open_decompressed(info.path) as reader:
            assert reader.read() == data


def test_atomic_write_refuses_replaces_and_rolls_back(tmp_path: Path) -> None:
    final = tmp_path / "file"
    final.write_bytes(b"old")
    with pytest.raises(RefusedError), atomic_write(final) as fh:
        fh.write(b"new")
    assert final.read_bytes() == b"old"

    def crash_midway() -> None:
        with atomic_write(final, overwrite=True) as fh:
            fh.write(b"half")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        crash_midway()
    assert final.read_bytes() == b"old"
    with atomic_write(final, overwrite=True) as fh:
        fh.write(b"new")
    assert final.read_bytes() == b"new"
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
