"""Binary-log coordinates are recorded while the lock is held (private server with log-bin)."""

from __future__ import annotations

import pymysql
import pytest
from tests.fixtures.mariadb import PrivateServer

from safesnap.config.plan import MysqlTarget
from safesnap.engines import get_engine

pytestmark = pytest.mark.mariadb


def master_status(port: int) -> tuple[str, int]:
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            assert row is not None
            return str(row[0]), int(row[1])
    finally:
        conn.close()


def write(port: int, sql: str) -> None:
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["ftwrl", "backup_stage"])
def test_coordinates_are_the_locked_point(binlog_server: PrivateServer, mode: str) -> None:
    port = binlog_server.port
    write(port, "CREATE DATABASE IF NOT EXISTS app")
    write(port, "CREATE TABLE IF NOT EXISTS app.t (id INT AUTO_INCREMENT PRIMARY KEY)")
    write(port, "INSERT INTO app.t VALUES (NULL)")
    before = master_status(port)
    target = MysqlTarget(name="binlog", databases=["app"], port=port, lock_mode=mode)
    with get_engine("mysql").quiesce(target) as info:
        during = master_status(port)
    write(port, "INSERT INTO app.t VALUES (NULL)")
    after = master_status(port)
    binlog = info["binlog"]
    assert binlog is not None
    assert (binlog["file"], int(binlog["position"])) == before == during
    assert after[1] > before[1]  # the next write moved on from the recorded point
    assert binlog["gtid"].startswith("0-1-")  # domain 0, server 1, sequence
