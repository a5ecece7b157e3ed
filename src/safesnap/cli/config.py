"""`safesnap config check|env-example`: validate a plan before the night it matters."""

from __future__ import annotations

from pathlib import Path

import typer

from safesnap.cli.options import ConfigOpt, EnvFileOpt, JsonOpt, group
from safesnap.cli.run import resolve_plan
from safesnap.config.check import env_file_warnings, plan_problems, snapshot_cost_estimates
from safesnap.config.envdoc import env_example
from safesnap.errors import ConfigError
from safesnap.output import log, print_json, say

config_app = group("Check a plan; generate .env.example.")


@config_app.command("check")
def check(
    config: Path | None = ConfigOpt, env_file: Path | None = EnvFileOpt, json_out: bool = JsonOpt
) -> None:
    """Validate the plan and what it needs on this host (source files, secrets); list every
    problem with its file and key (exit 2)."""
    plan = resolve_plan(config, env_file)
    where = str(config) if config is not None else "safesnap.toml"
    problems = plan_problems(plan, where)
    if problems:
        raise ConfigError(
            f"{where}: {len(problems)} problem(s) a run would meet",
            problems=problems,
            hint="Fix the keys listed; secrets are checked by name, never shown.",
        )
    warnings = env_file_warnings()
    estimates = snapshot_cost_estimates(plan)
    if json_out:
        dump = plan.model_dump(mode="json")
        print_json(
            {
                "ok": True,
                "problems": [],
                "warnings": warnings,
                "plan": dump,
                "snapshot_cost_estimates": estimates,
            }
        )
        return
    say(f"plan {plan.plan!r} is valid: {len(plan.targets)} target(s)")
    for target in plan.targets:
        provider = target.snapshot.provider if target.snapshot else "none"
        say(f"  {target.name}: engine {target.engine}, snapshot {provider}")
    for line in estimates:
        say(f"  snapshot storage estimate: {line}")
    for warning in warnings:
        log.warning("%s", warning)


@config_app.command("env-example")
def env_example_cmd(json_out: bool = JsonOpt) -> None:
    """Print the .env.example generated from the settings model."""
    if json_out:
        print_json({"ok": True, "env_example": env_example()})
        return
    typer.echo(env_example(), nl=False)
