"""`[[notify]]` and `[healthcheck]`: who hears about a run, and the dead-man's switch.

Apart from plan.py so the notify package and its tests need only these models. A URL may carry
a token (Slack, Telegram, a webhook path), so both sections accept `url_env`, the NAME of a
variable holding it, read through the same secret lookup as passwords; the URL itself is never
logged or reported, only the section's name and the URL's scheme.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from safesnap.config.targets import Strict

Event = Literal["failure", "success", "drill_failure"]
EVENTS: tuple[Event, ...] = ("failure", "success", "drill_failure")
DEFAULT_ON: tuple[Event, ...] = ("failure", "drill_failure")


class _UrlSource(Strict):
    url: str | None = Field(
        None, description="The URL itself; only for URLs without a secret in them."
    )
    url_env: str | None = Field(
        None, description="Name of the variable (environment or env file) holding the URL."
    )
    timeout: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Seconds one delivery may take before it is given up (and reported).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> _UrlSource:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url or url_env")
        return self


class Notify(_UrlSource):
    """One `[[notify]]` entry: an Apprise URL and the events it hears about."""

    name: str | None = Field(
        None, description="Name used in logs and the report (default: notify[N] and scheme)."
    )
    on: list[Event] = Field(
        default_factory=lambda: list(DEFAULT_ON),
        min_length=1,
        description='Events that send: "failure", "success", "drill_failure".',
    )


class Healthcheck(_UrlSource):
    """`[healthcheck]`: pings in the healthchecks.io convention (also Uptime Kuma push, ...)."""

    method: Literal["GET", "POST"] = Field(
        "GET", description="HTTP method of the pings; the summary is sent as the body."
    )
