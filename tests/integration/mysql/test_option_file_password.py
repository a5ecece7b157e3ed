"""The option file carries any password to the real client: quotes, backslashes, `#`, and the
newline and CR that would otherwise end the line and leak the rest as an "unknown option"."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from pydantic import SecretStr
from tests.fixtures.mariadb import HOST, PORT, run_sql

from safesnap.engines.mysql.client import option_file
from safesnap.engines.mysql.conn import ConnParams

pytestmark = pytest.mark.mariadb
PASSWORD = 'line1\nline2\r"quoted" \\back # not a comment'


def test_a_password_with_newlines_and_quotes_logs_in(mariadb_server: None) -> None:
    user = f"pw_{uuid.uuid4().hex[:8]}"
    run_sql(None, f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", args=(PASSWORD,))
    try:
        params = ConnParams(host=HOST, port=PORT, user=user, password=SecretStr(PASSWORD))
        with option_file(params, via_stdin=False) as (first_arg, _):
            proc = subprocess.run(
                ["mariadb", first_arg, "-N", "-e", "SELECT CURRENT_USER()"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"{user}@%"
        assert "line2" not in proc.stderr
    finally:
        run_sql(None, f"DROP USER '{user}'@'%'")
