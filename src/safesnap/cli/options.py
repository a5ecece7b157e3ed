"""Options shared by several commands, declared once so a flag reads the same everywhere.

Help is plain text (`rich_markup_mode=None` on the root app in cli.py, which typer passes down
to every group): with typer's rich help, `[retention]` in a help string vanished as markup and
every flag showed a `<bool>` placeholder (typer 0.29) as if it took a value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def group(help_text: str, cls: Any = None) -> typer.Typer:
    """A command group: help when called bare, plain help also if used outside the root app.
    `cls`: a group class, e.g. cli.lazy.lazy_group(...) for commands imported on use."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None, cls=cls)


def _env_file_given(value: Path | None) -> Path | None:
    # Runs while the command line is parsed, before the command body, so every secret the
    # command reads later (MySQL password, provider tokens, replica keys) comes from this file.
    # Imported here: safesnap.config.plan pulls in pydantic-settings, which `--version` and
    # `backup sqlite` do not need (commands/lazy.py).
    from safesnap.config.plan import use_env_file

    use_env_file(value)
    return value


JsonOpt: Any = typer.Option(
    False, "--json", help="Print one JSON object on stdout (errors too); logs stay on stderr."
)
ConfigOpt: Any = typer.Option(
    None, "--config", "-c", help="Plan file (TOML). Default: ./safesnap.toml."
)
EnvFileOpt: Any = typer.Option(
    None,
    "--env-file",
    callback=_env_file_given,
    help="Read secrets (passwords, tokens, keys) and SAFESNAP_* settings from this file "
    "instead of ./.env; variables set in the environment win.",
)
DryRunOpt: Any = typer.Option(False, "--dry-run", help="Show what would be done; change nothing.")

# Artifact and engine options of `verify` and `restore`: the MySQL engine uses them to reach a
# (scratch) server; SQLite ignores them.
ArtifactArg: Any = typer.Argument(..., help="The artifact file (or its .manifest.json).")
HostOpt: Any = typer.Option(None, "--host", help="MySQL: server host.")
PortOpt: Any = typer.Option(None, "--port", help="MySQL: server port.")
UserOpt: Any = typer.Option(None, "--user", help="MySQL: user name.")
SocketOpt: Any = typer.Option(None, "--socket", help="MySQL: Unix socket path.")
PasswordEnvOpt: Any = typer.Option(
    None,
    "--password-env",
    help="MySQL: NAME of the variable holding the password (environment or --env-file).",
)
TmpDirOpt: Any = typer.Option(None, "--tmp-dir", help="Where decompressed scratch copies go.")
ClientOpt: Any = typer.Option(
    None, "--client", help="MySQL: load program (default: mariadb or mysql)."
)
PrefixOpt: Any = typer.Option(
    None, "--command-prefix", help='MySQL: run the client through this, e.g. "docker exec -i db".'
)
