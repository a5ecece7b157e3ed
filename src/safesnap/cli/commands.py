"""Every CLI command, registered here and only here (cli.py and commands/backup.py wire these
tables in). Each is "module:attribute", a command function or a Typer group, imported only when
that command runs or --help lists it (commands/lazy.py), so `safesnap --version` and
`safesnap backup sqlite` never import PyMySQL, boto3 or the cloud SDKs."""

from __future__ import annotations

# In the order `safesnap --help` lists them.
ROOT_COMMANDS: dict[str, str] = {
    "run": "safesnap.cli.run:run",
    "snapshot": "safesnap.cli.run:snapshot",
    "list": "safesnap.cli.list_:list_artifacts",
    "prune": "safesnap.cli.prune:prune",
    "verify": "safesnap.cli.verify:verify",
    "restore": "safesnap.cli.restore:restore",
    "backup": "safesnap.cli.backup:backup_app",
    "config": "safesnap.cli.config:config_app",
    "snapshots": "safesnap.cli.snapshots:snapshots_app",
    "init": "safesnap.cli.init:init",
    "schedule": "safesnap.cli.schedule:schedule_app",
    "notify": "safesnap.cli.notify:notify_app",
    "drill": "safesnap.cli.drill:drill",
}
BACKUP_COMMANDS: dict[str, str] = {
    "sqlite": "safesnap.cli.backup_sqlite:backup_sqlite",
    "mysql": "safesnap.cli.backup_mysql:backup_mysql",
}
