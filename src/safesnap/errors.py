"""One root error; subclasses carry context and a stable code.

Only the CLI (cli.py) turns these into exit codes and `--json` error objects, so every layer
below it raises and never prints or exits. The codes and exit codes are a public contract,
documented in docs/reference/exit-codes.md: add new ones, never renumber.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SafesnapError(Exception):
    """Root of every error safesnap raises on purpose.

    `code` is a stable machine-readable string, `exit_code` the process exit status the CLI
    uses, `hint` one sentence telling the operator what to do next. Context fields (target,
    provider, resource id, request id) are included in the JSON error object when set.
    Messages must never contain secrets: pass names of variables, never their values.
    """

    code: ClassVar[str] = "error"
    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        target: str | None = None,
        provider: str | None = None,
        resource_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.target = target
        self.provider = provider
        self.resource_id = resource_id
        self.request_id = request_id

    def to_dict(self) -> dict[str, Any]:
        """The `--json` error object: stable keys, context only when known."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        for key in ("target", "provider", "resource_id", "request_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class ConfigError(SafesnapError):
    """The plan, settings or command-line input is invalid. Nothing has run."""

    code = "config_invalid"
    exit_code = 2

    def __init__(self, message: str, *, problems: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.problems = problems or []

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.problems:
            out["problems"] = self.problems
        return out


class SourceError(SafesnapError):
    """The database to back up is missing, not a database, corrupt or unreachable."""

    code = "source_unusable"
    exit_code = 3


class SourceBusyError(SafesnapError):
    """The database stayed locked (or a lock could not be taken) beyond the configured wait."""

    code = "source_busy"
    exit_code = 4


class IntegrityError(SafesnapError):
    """A checksum or an integrity check failed: the artifact or copy cannot be trusted."""

    code = "integrity_failed"
    exit_code = 5


class ArtifactError(SafesnapError):
    """An artifact or manifest is missing, unreadable or not one safesnap wrote."""

    code = "artifact_invalid"
    exit_code = 6


class DestinationError(ArtifactError):
    """The destination (the attached volume) cannot be written: full, read-only, no permission."""

    code = "destination_failed"
    exit_code = 12


class RefusedError(SafesnapError):
    """safesnap refused something destructive (overwrite, non-empty database) without --force."""

    code = "refused"
    exit_code = 7


class RunLockedError(SafesnapError):
    """Another safesnap run holds the run lock for this destination."""

    code = "run_locked"
    exit_code = 8


class QuiesceError(SafesnapError):
    """The database could not be brought to a consistent point safely (and was left untouched)."""

    code = "quiesce_failed"
    exit_code = 9


class ProviderError(SafesnapError):
    """A snapshot provider failed. `transient` says whether retrying may help."""

    code = "provider_failed"
    exit_code = 10

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.transient = transient
        self.retry_after = retry_after
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["transient"] = self.transient
        if self.status is not None:
            out["status"] = self.status
        return out


class ProviderTimeoutError(ProviderError):
    """Waiting for a provider operation ran past its configured limit."""

    code = "provider_timeout"


class RunFailedError(SafesnapError):
    """A plan run finished with at least one failed target (details in the report); the other
    targets ran, and the report, report_file and metrics were written."""

    code = "run_failed"
    exit_code = 11


class InternalError(SafesnapError):
    """An exception safesnap did not anticipate (a library error, a bug). Inside a run it fails
    only the step it happened in; the message names the exception type, the traceback is logged
    only with --verbose."""

    code = "internal_error"
    exit_code = 1

    @classmethod
    def from_exception(cls, exc: BaseException, *, target: str | None = None) -> InternalError:
        return cls(
            f"{type(exc).__name__}: {exc}",
            hint="run again with --verbose for the traceback, and report it as a bug",
            target=target,
        )


class InterruptedRunError(SafesnapError):
    """SIGINT arrived (Ctrl-C); temporary files were removed, nothing half-written is left.
    Exit codes follow the shell convention 128 + signal number."""

    code = "interrupted"
    exit_code = 130

    def __init__(self, signal_name: str = "SIGINT", **kw: Any) -> None:
        super().__init__(f"interrupted by {signal_name}; temporary files removed", **kw)


class TerminatedRunError(InterruptedRunError):
    """SIGTERM arrived (systemd stopping the service, `kill`); cleaned up as for SIGINT."""

    exit_code = 143

    def __init__(self, **kw: Any) -> None:
        super().__init__("SIGTERM", **kw)


class PrivilegeError(SourceError):
    """The database user lacks a privilege the operation needs (e.g. `verify` creating its
    scratch database with a user that has only the dump privileges). Nothing was changed; an
    artifact being verified stays, unverified. Shares exit code 3 with source_unusable."""

    code = "privilege_missing"


class NotifyError(SafesnapError):
    """A notification or healthcheck ping could not be delivered. Inside `run` it never fails
    the run (it is logged and listed in the report's `notifications`); `safesnap notify test`
    exits with it when a channel failed."""

    code = "notify_failed"
    exit_code = 13


class ScheduleError(SafesnapError):
    """`safesnap schedule` could not write, enable or remove the timer (or cron line): no
    permission, systemd not running, systemctl failed. The message says what was done."""

    code = "schedule_failed"
    exit_code = 14


class DecryptionError(IntegrityError):
    """An encrypted artifact cannot be decrypted: no identity given, the identity file is
    unreadable, or none of its keys matches the artifact's recipients (or the ciphertext is
    damaged). Nothing was written at the restore target. Shares exit code 5 with
    integrity_failed: the artifact cannot be trusted or read with what was given."""

    code = "decryption_failed"


class DrillFailedError(SafesnapError):
    """A drill finished and at least one target's newest backup did not fetch, checksum,
    restore or check (details in the drill report); the other targets were drilled and the
    report, drill_report_file and metrics were written. Scratch data was removed."""

    code = "drill_failed"
    exit_code = 15


class ProviderInUseError(ProviderError):
    """The provider refuses to delete a resource something else still uses (AWS
    `InvalidSnapshot.InUse`: an AMI registered from the snapshot). Permanent until that user
    is gone; `snapshots prune` keeps the snapshot and warns instead of failing. Exit code 10."""

    code = "provider_in_use"
