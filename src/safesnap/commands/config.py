"""`safesnap config check|env-example`: validate a plan before the night it matters."""

from __future__ import annotations

from pathlib import Path

import typer

from safesnap.commands.run import ConfigOpt, EnvFileOpt, JsonOpt, resolve_plan
from safesnap.envdoc import env_example
from safesnap.output import print_json, stderr_console

config_app = typer.Typer(help="Check a plan; generate .env.example.", no_args_is_help=True)


@config_app.command("check")
def check(
    config: Path | None = ConfigOpt, env_file: Path | None = EnvFileOpt, json_out: bool = JsonOpt
) -> None:
    """Load and validate the plan; list every problem with its file and key."""
    plan = resolve_plan(config, env_file)
    if json_out:
        print_json({"ok": True, "plan": plan.model_dump(mode="json")})
        return
    stderr_console.print(f"plan {plan.plan!r} is valid: {len(plan.targets)} target(s)")
    for target in plan.targets:
        provider = target.snapshot.provider if target.snapshot else "none"
        stderr_console.print(f"  {target.name}: engine {target.engine}, snapshot {provider}")


@config_app.command("env-example")
def env_example_cmd() -> None:
    """Print the .env.example generated from the settings model."""
    typer.echo(env_example(), nl=False)
