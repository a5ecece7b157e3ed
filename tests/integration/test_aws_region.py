"""AWS region and credentials as boto3 resolves them on a real host (issue #9): with no
`region` in the plan, AWS_REGION / AWS_DEFAULT_REGION, the profile's region, then the instance's
region from IMDS, never a hard-coded us-east-1; a wrong profile or no credentials is a clear
provider_failed error. Each test builds an isolated AWS environment (its own config files, an
IMDS fake on 127.0.0.1), so nothing comes from the machine."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.aws import MotoEC2

from safesnap.errors import ProviderError
from safesnap_providers.aws.adapter import from_settings
from safesnap_providers.aws.config import AwsSettings, AwsSnapshot
from safesnap_providers.base import SnapshotRequest, managed_labels

SPEC = AwsSnapshot(provider="aws", volume_ids=["vol-1"])


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_ec2: MotoEC2) -> MotoEC2:
    """moto's credentials, but no region anywhere and AWS files of this test only."""
    config = tmp_path / "aws-config"
    config.write_text("[profile dr]\nregion = ap-southeast-2\n[profile bare]\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return moto_ec2


def _settings(moto: MotoEC2, **kw: Any) -> AwsSettings:
    return AwsSettings(endpoint_url=moto.endpoint, **kw)


def test_region_from_aws_region_is_where_snapshots_go(
    aws_env: MotoEC2, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    provider = from_settings(_settings(aws_env), SPEC)
    assert provider.region == "eu-west-3"
    volume = aws_env.volume(region="eu-west-3")
    run_id = uuid.uuid4().hex[:8]
    labels = managed_labels(plan="p", target="db", run_id=run_id, kind="nightly")
    (snap,) = provider.create_snapshot(SnapshotRequest(volume, "x", labels))
    assert snap.region == "eu-west-3"
    assert [s.id for s in provider.list_snapshots({"run-id": run_id})] == [snap.id]


def test_region_from_aws_default_region(aws_env: MotoEC2, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert from_settings(_settings(aws_env), SPEC).region == "sa-east-1"


def test_region_from_the_profile(aws_env: MotoEC2) -> None:
    assert from_settings(_settings(aws_env, profile="dr"), SPEC).region == "ap-southeast-2"


def test_plan_region_wins(aws_env: MotoEC2, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert from_settings(_settings(aws_env, region="eu-north-1"), SPEC).region == "eu-north-1"


class _Imds(BaseHTTPRequestHandler):
    """IMDSv2: a session token, then the instance's availability zone."""

    def do_PUT(self) -> None:
        self._answer("/latest/api/token", "imds-token")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != "imds-token":
            self.send_response(401)
            self.end_headers()
            return
        self._answer("/latest/meta-data/placement/availability-zone", "ca-central-1b")

    def _answer(self, path: str, body: str) -> None:
        ok = self.path.rstrip("/") == path  # botocore asks for ".../availability-zone/"
        self.send_response(200 if ok else 404)
        self.end_headers()
        if ok:
            self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def imds() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def test_region_from_the_instance_metadata_service(
    aws_env: MotoEC2, monkeypatch: pytest.MonkeyPatch, imds: str
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds)
    assert from_settings(_settings(aws_env), SPEC).region == "ca-central-1"


def test_no_region_anywhere_is_a_clear_provider_error(aws_env: MotoEC2) -> None:
    with pytest.raises(ProviderError) as info:
        from_settings(_settings(aws_env), SPEC)  # IMDS disabled by the moto fixture
    assert info.value.code == "provider_failed" and "no AWS region" in info.value.message
    assert "AWS_REGION" in (info.value.hint or "")


def test_wrong_profile_is_a_clear_provider_error(aws_env: MotoEC2) -> None:
    with pytest.raises(ProviderError) as info:
        from_settings(_settings(aws_env, profile="no-such-profile", region="eu-west-1"), SPEC)
    assert info.value.code == "provider_failed"
    assert "AWS profile 'no-such-profile' not found" in info.value.message


def test_wrong_aws_profile_variable_is_a_clear_provider_error(
    aws_env: MotoEC2, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "typo")
    with pytest.raises(ProviderError) as info:
        from_settings(_settings(aws_env, region="eu-west-1"), SPEC)
    assert "AWS profile 'typo' not found" in info.value.message


def test_missing_credentials_is_a_clear_provider_error(
    aws_env: MotoEC2, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    provider = from_settings(_settings(aws_env, profile="bare", region="eu-west-1"), SPEC)
    with pytest.raises(ProviderError) as info:
        provider.list_snapshots({})
    assert info.value.code == "provider_failed"
    assert "no AWS credentials found" in info.value.message and info.value.hint
