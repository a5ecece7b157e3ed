"""`safesnap config check|env-example`: validate a plan before the night it matters."""

from __future__ import annotations

from pathlib import Path

import typer

from safesnap.commands.options import ConfigOpt, EnvFileOpt, JsonOpt, group
from safesnap.commands.run import resolve_plan
from safesnap.envdoc import env_example
from safesnap.output import print_json, say

config_app = group("Check a plan; generate .env.example.")


@config_app.command("check")
def check(
    config: Path | None = ConfigOpt, env_file: Path | None = EnvFileOpt, json_out: bool = JsonOpt
) -> None:
    """Load and validate the plan; list every problem with its file and key."""
    plan = resolve_plan(config, env_file)
    if json_out:
        print_json({"ok": True, "plan": plan.model_dump(mode="json")})
        return
    say(f"plan {plan.plan!r} is valid: {len(plan.targets)} target(s)")
    for target in plan.targets:
        provider = target.snapshot.provider if target.snapshot else "none"
        say(f"  {target.name}: engine {target.engine}, snapshot {provider}")


@config_app.command("env-example")
def env_example_cmd(json_out: bool = JsonOpt) -> None:
    """Print the .env.example generated from the settings model."""
    if json_out:
        print_json({"ok": True, "env_example": env_example()})
        return
    typer.echo(env_example(), nl=False)
