"""make_private_dirs: every directory it creates is 0700 whatever the umask; what exists is left
alone; anything in the way is destination_failed with the path and the OS reason."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from safesnap.artifacts.destination import destination_error, make_private_dirs
from safesnap.errors import DestinationError


@pytest.fixture(params=[0o000, 0o022, 0o077, 0o277])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_created_directories_are_0700_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    deep = tmp_path / "a" / "b" / "c"
    make_private_dirs(deep)
    for made in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert made.stat().st_mode & 0o7777 == 0o700, (oct(umask), made)


def test_existing_directories_keep_their_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    make_private_dirs(shared / "mine")
    assert shared.stat().st_mode & 0o777 == 0o755
    assert (shared / "mine").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("obstacle", ["file", "dangling-link"])
def test_something_in_the_way(tmp_path: Path, obstacle: str) -> None:
    blocker = tmp_path / "x"
    if obstacle == "file":
        blocker.write_text("")
    else:
        blocker.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DestinationError) as err:
        make_private_dirs(blocker / "dest")
    assert err.value.message == f"cannot create directory {blocker}: Not a directory"
    assert err.value.exit_code == 12
    assert not (tmp_path / "nowhere").exists()


def test_error_names_the_path_and_the_reason() -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    error = destination_error(exc, "/mnt/backups")
    assert error.message == "cannot write /mnt/backups: No space left on device"
    assert error.hint is not None and "full" in error.hint
