"""`safesnap notify test`: prove the plan's notifications arrive before a night depends on it."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from safesnap.cli.options import ConfigOpt, EnvFileOpt, JsonOpt, group
from safesnap.cli.run import resolve_plan
from safesnap.errors import ConfigError, NotifyError
from safesnap.notify import dispatch, notice
from safesnap.output import print_json, say

notify_app = group("Check the plan's notifications.")


@notify_app.command("test")
def send_test(
    config: Path | None = ConfigOpt, env_file: Path | None = EnvFileOpt, json_out: bool = JsonOpt
) -> None:
    """Send a test message to every [[notify]] entry, whatever its `on` (the healthcheck is
    not pinged: a test ping would tell the dead-man's switch a backup ran). Exit 13 if one
    was not delivered."""
    plan = resolve_plan(config, env_file)
    if not plan.notify:
        raise ConfigError("the plan has no [[notify]] entry", hint="docs/how-to/notifications.md")
    host = socket.gethostname()
    text = f"safesnap test message for plan {plan.plan} from {host}; notifications work."
    deliveries = dispatch(plan, "test", notice(f"safesnap: test ({plan.plan})", text))
    failed = [d for d in deliveries if not d.ok]
    if json_out:
        print_json({"ok": not failed, "notifications": [d.to_dict() for d in deliveries]})
    else:
        for delivery in deliveries:
            say(f"{delivery.channel}: {'delivered' if delivery.ok else 'FAILED'}")
    if failed:
        error = failed[0].error or NotifyError("a notification was not delivered")
        if json_out:
            raise typer.Exit(error.exit_code)
        raise NotifyError(f"{len(failed)} of {len(deliveries)} not delivered", hint=error.hint)
