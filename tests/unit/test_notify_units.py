"""The pure parts of notifications: message content, URL redaction, ping URLs, plan keys."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safesnap.config.plan import load_plan
from safesnap.errors import ConfigError, RunLockedError, SourceError
from safesnap.notify.channels import ping_url
from safesnap.notify.message import SUMMARY_MAX, notice_for_run
from safesnap.notify.redact import MASK, redact, scheme_of
from safesnap.run.report import RunReport, StepResult, TargetResult, failed_step


def report_with(*targets: TargetResult) -> RunReport:
    run_id = "20261204T031500Z-abc123"
    report = RunReport(run_id=run_id, plan="torrust", kind="nightly", dry_run=False)
    report.targets.extend(targets)
    return report


def test_a_failure_notice_names_target_step_code_and_next_step() -> None:
    bad = TargetResult("tracker-db", "mysql")
    bad.steps.append(StepResult("backup"))
    error = SourceError("cannot connect to 127.0.0.1:3306", hint="start the server")
    bad.steps.append(failed_step("verify", error, 0.5))
    good = TargetResult("config", "files", steps=[StepResult("backup")])
    notice = notice_for_run(report_with(bad, good))
    assert notice.title == "safesnap: plan torrust FAILED: tracker-db"
    assert "tracker-db: verify failed [source_unusable] cannot connect" in notice.body
    assert "next step: start the server" in notice.body
    assert notice.summary.startswith("safesnap plan torrust, run 20261204T031500Z-abc123")
    assert "FAILED: tracker-db: verify failed [source_unusable]" in notice.summary


def test_a_run_stopped_before_any_target_says_why() -> None:
    error = RunLockedError("another run holds the lock", hint="wait for it")
    notice = notice_for_run(report_with(), error.to_dict())
    assert "run: run failed [run_locked] another run holds the lock" in notice.body
    assert "next step: wait for it" in notice.body
    assert notice.title == "safesnap: plan torrust FAILED"


@given(st.text(min_size=0, max_size=2000))
def test_the_summary_is_always_one_short_line(message: str) -> None:
    bad = TargetResult("t", "sqlite")
    bad.steps.append(failed_step("backup", SourceError(message, hint=message), 0.1))
    summary = notice_for_run(report_with(bad)).summary
    assert "\n" not in summary
    assert len(summary) <= SUMMARY_MAX


TOKENS = st.text(string.ascii_letters + string.digits + "-_", min_size=8, max_size=40)


@given(TOKENS, st.sampled_from(["path", "user", "password", "query", "host"]))
def test_redact_hides_a_token_wherever_it_sits_in_the_url(token: str, where: str) -> None:
    url = {
        "path": f"json://hooks.example:8080/services/{token}",
        "user": f"mailto://{token}:pw123@mail.example",
        "password": f"matrix://bot:{token}@matrix.example/#room",
        "query": f"ntfy://ntfy.example/topic?auth={token}",
        "host": f"tgram://{token}/12345",
    }[where]
    text = f"Failed to send to {url}: HTTPConnectionPool(url: /services/{token}) {token}"
    redacted = redact(text, url)
    assert token not in redacted
    assert MASK in redacted


def test_the_scheme_is_what_a_channel_is_named_by() -> None:
    assert scheme_of(f"tgram://{'x' * 20}/1") == "tgram"
    assert scheme_of("not a url") == "?"


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        ("https://hc-ping.com/uuid", "start", "https://hc-ping.com/uuid/start"),
        ("https://hc-ping.com/uuid/", "success", "https://hc-ping.com/uuid"),
        ("https://hc.example/ping/uuid?rid=1", "fail", "https://hc.example/ping/uuid/fail?rid=1"),
    ],
)
def test_ping_urls_follow_the_healthchecks_convention(url: str, kind: str, expected: str) -> None:
    assert ping_url(url, kind) == expected  # type: ignore[arg-type]


def plan_file(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(
        f'[destination]\npath = "{tmp_path}"\n'
        f'[[targets]]\nname = "t"\nengine = "sqlite"\npath = "{tmp_path / "x.db"}"\n{extra}'
    )
    return path


def test_notify_defaults_to_failures() -> None:
    from safesnap.config.notify import Notify

    assert Notify(url="json://x").on == ["failure", "drill_failure"]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('[[notify]]\nurl = "json://a"\nurl_env = "B"\n', "notify[0]: give exactly one of"),
        ("[[notify]]\non = []\n", "notify[0].on: List should have at least 1"),
        ('[[notify]]\nname = "x"\n', "notify[0]: give exactly one of"),
        ('[[notify]]\nurl = "json://a"\non = ["sometimes"]\n', "notify[0].on[0]"),
        ('[healthcheck]\nurl = "https://x"\ntimeout = 0\n', "healthcheck.timeout"),
        ('[healthcheck]\nurl = "https://x"\nmethod = "PUT"\n', "healthcheck.method"),
    ],
)
def test_bad_notify_keys_are_plan_problems(tmp_path: Path, extra: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plan(plan_file(tmp_path, extra))
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_config_check_names_an_unset_notify_variable(tmp_path: Path) -> None:
    from safesnap.config.check import plan_problems

    plan = load_plan(
        plan_file(
            tmp_path,
            '[[notify]]\nurl_env = "SAFESNAP_TEST_NO_SUCH_HOOK"\n'
            '[healthcheck]\nurl_env = "SAFESNAP_TEST_NO_SUCH_PING"\n',
        ),
        env_file=tmp_path / "none.env",
    )
    problems = [p for p in plan_problems(plan, "plan.toml") if "SAFESNAP_TEST_NO_SUCH" in p]
    assert problems[0].startswith("plan.toml: notify[0].url_env: environment variable")
    assert problems[1].startswith("plan.toml: healthcheck.url_env: environment variable")
