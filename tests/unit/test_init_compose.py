"""Reading a compose file the way docker compose does: interpolation, bind mounts, ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from safesnap.init.compose import (
    bind_mounts,
    host_path,
    interpolate,
    published_port,
    service_environment,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A/x", "1/x"),
        ("${MISSING:-sqlite3}", "sqlite3"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${MISSING-d}", "d"),
        ("$$A", "$A"),
        ("${MISSING}", ""),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "1", "EMPTY": ""}) == expected


def test_environment_list_and_mapping_forms() -> None:
    env = {"DRIVER": "mysql", "BARE": "from-env"}
    listed = {"environment": ["X=${DRIVER}", "BARE", "Y=a=b"]}
    assert service_environment(listed, env) == {"X": "mysql", "BARE": "from-env", "Y": "a=b"}
    mapped = {"environment": {"X": "${DRIVER:-sqlite3}", "N": None}}
    assert service_environment(mapped, {}) == {"X": "sqlite3", "N": ""}


def test_bind_mounts_map_container_paths_to_the_host(tmp_path: Path) -> None:
    service = {
        "volumes": [
            "./storage/tracker/lib:/var/lib/torrust/tracker:Z",
            "mysql_data:/var/lib/mysql",  # named volume: not on the host tree
            {"type": "bind", "source": "/srv/etc", "target": "/etc/torrust/tracker"},
            "./storage/tracker/lib/database:/var/lib/torrust/tracker/database",
        ]
    }
    mounts = bind_mounts(service, tmp_path)
    db = host_path("/var/lib/torrust/tracker/database/sqlite3.db", mounts)
    assert db == tmp_path / "storage/tracker/lib/database/sqlite3.db"
    assert host_path("/etc/torrust/tracker/tracker.toml", mounts) == Path("/srv/etc/tracker.toml")
    assert host_path("/var/lib/mysql/ibdata1", mounts) is None
    assert host_path("/var/lib/torrust/trackerx/a", mounts) is None


def test_published_ports() -> None:
    assert published_port({"ports": ["3306:3306"]}, 3306) == 3306
    assert published_port({"ports": ["127.0.0.1:3307:3306/tcp"]}, 3306) == 3307
    assert published_port({"ports": [{"target": 3306, "published": "13306"}]}, 3306) == 13306
    assert published_port({"ports": ["6969:6969/udp"]}, 3306) is None
    assert published_port({}, 3306) is None
