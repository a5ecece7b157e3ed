"""Every CLI command, registered here and only here (cli.py and commands/backup.py wire these
tables in). Each is "module:attribute", a command function or a Typer group, imported only when
that command runs or --help lists it (commands/lazy.py), so `safesnap --version` and
`safesnap backup sqlite` never import PyMySQL, boto3 or the cloud SDKs."""

from __future__ import annotations

# In the order `safesnap --help` lists them.
ROOT_COMMANDS: dict[str, str] = {
    "run": "safesnap.commands.run:run",
    "snapshot": "safesnap.commands.run:snapshot",
    "list": "safesnap.commands.list_:list_artifacts",
    "prune": "safesnap.commands.prune:prune",
    "verify": "safesnap.commands.verify:verify",
    "restore": "safesnap.commands.restore:restore",
    "backup": "safesnap.commands.backup:backup_app",
    "config": "safesnap.commands.config:config_app",
    "snapshots": "safesnap.commands.snapshots:snapshots_app",
}
BACKUP_COMMANDS: dict[str, str] = {
    "sqlite": "safesnap.commands.backup_sqlite:backup_sqlite",
    "mysql": "safesnap.commands.backup_mysql:backup_mysql",
}
