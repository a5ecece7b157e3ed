"""What the scratch sweep removes, and what it must never touch (artifacts/scratch.py).

The sweep runs in the system temp directory (verify, restore from a replica), which other
programs and other users share: only this user's abandoned directories of the one kind go.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest

from safesnap.artifacts.scratch import LOCK_NAME, UNLOCKED_MIN_AGE, scratch_dir, sweep_scratch


def scratch(root: Path, name: str, *, lock: bool = True) -> Path:
    path = root / name
    path.mkdir(mode=0o700)
    if lock:
        (path / LOCK_NAME).write_bytes(b"")
    (path / "copy.sqlite").write_bytes(b"x" * 4096)
    return path


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_an_abandoned_directory_goes_and_a_live_one_stays(tmp_path: Path) -> None:
    dead = scratch(tmp_path, ".safesnap-verify.a.zst.dead01")
    live = scratch(tmp_path, ".safesnap-verify.a.zst.live01")
    fd = os.open(live / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running verify holds it
        assert sweep_scratch(tmp_path, "verify") == [str(dead)]
        assert live.is_dir() and (live / "copy.sqlite").is_file()
    finally:
        os.close(fd)
    assert not dead.exists()


def test_a_directory_without_its_lock_goes_only_once_old(tmp_path: Path) -> None:
    young = scratch(tmp_path, ".safesnap-verify.a.zst.young1", lock=False)
    old = scratch(tmp_path, ".safesnap-verify.a.zst.old001", lock=False)
    age(old, UNLOCKED_MIN_AGE + 5)
    assert sweep_scratch(tmp_path, "verify") == [str(old)]
    assert young.is_dir()


def test_other_kinds_names_and_symlinks_are_left_alone(tmp_path: Path) -> None:
    drill = scratch(tmp_path, ".safesnap-drill.db.abc123")
    other = scratch(tmp_path, "safesnap-verify-xyz")  # not our scheme (no leading dot)
    target = scratch(tmp_path, "elsewhere")
    link = tmp_path / ".safesnap-verify.a.zst.link01"
    link.symlink_to(target)
    assert sweep_scratch(tmp_path, "verify") == []
    assert drill.is_dir() and other.is_dir() and link.is_symlink()
    assert (target / "copy.sqlite").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_another_users_directory_in_a_shared_tmp_is_left_alone(tmp_path: Path) -> None:
    theirs = scratch(tmp_path, ".safesnap-verify.a.zst.their1")
    os.chown(theirs, 65534, 65534)
    assert sweep_scratch(tmp_path, "verify") == []
    assert theirs.is_dir()


def test_scratch_dir_sweeps_first_and_removes_its_own_on_error(tmp_path: Path) -> None:
    dead = scratch(tmp_path, ".safesnap-verify.a.zst.dead02")
    seen: dict[str, object] = {}

    def check_then_fail() -> None:
        with scratch_dir(tmp_path, "verify", "a.zst", sweep=True) as d:
            seen.update(path=d, dead_gone=not dead.exists(), mode=d.stat().st_mode & 0o777)
            (d / "copy.sqlite").write_bytes(b"y" * 4096)
            raise RuntimeError("the check failed")

    with pytest.raises(RuntimeError):
        check_then_fail()
    assert seen["dead_gone"] is True
    assert seen["mode"] == 0o700
    assert list(tmp_path.iterdir()) == []  # its own directory went with the error
