"""Artifacts replicated to S3-compatible storage (moto server): artifact first, manifest last,
checksums carried along; a failed upload leaves the local artifact untouched."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import boto3
import pytest

from safesnap.artifacts.store import write_artifact
from safesnap.config.plan import ObjectStoreReplica
from safesnap.errors import ProviderError
from safesnap.run.replicate import replicate_artifact


@pytest.fixture
def artifact(tmp_path: Path):  # type: ignore[no-untyped-def]
    payload = b"tracker rows " * 50_000
    return write_artifact(
        io.BytesIO(payload), tmp_path, target="tracker", engine="sqlite", ext="sqlite"
    )


def test_artifact_and_manifest_reach_the_bucket(
    artifact, moto_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-central-1")
    s3.create_bucket(
        Bucket="dr-copies", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    monkeypatch.setenv("DR_KEY", "testing")
    monkeypatch.setenv("DR_SECRET", "testing")
    replica = ObjectStoreReplica(
        name="dr",
        bucket="dr-copies",
        region="eu-central-1",
        endpoint_url=moto_endpoint,
        access_key_env="DR_KEY",
        secret_key_env="DR_SECRET",
    )
    result = replicate_artifact(artifact, replica, target="tracker")
    assert result["key"] == f"safesnap/tracker/{artifact.path.name}"
    body = s3.get_object(Bucket="dr-copies", Key=result["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == artifact.sha256
    manifest = s3.get_object(
        Bucket="dr-copies", Key=f"safesnap/tracker/{artifact.manifest_path.name}"
    )["Body"].read()
    assert json.loads(manifest)["sha256"] == artifact.sha256


def test_missing_bucket_is_a_clear_error_and_nothing_local_changes(
    artifact, moto_endpoint: str, aws_env: None
) -> None:
    before = artifact.path.read_bytes()
    replica = ObjectStoreReplica(name="dr", bucket="no-such-bucket", endpoint_url=moto_endpoint)
    with pytest.raises(ProviderError) as info:
        replicate_artifact(artifact, replica, target="tracker")
    assert "no-such-bucket" in info.value.message
    assert info.value.transient is False
    assert artifact.path.read_bytes() == before
    assert artifact.manifest_path.exists()


def test_unset_credential_variables_are_named_not_guessed(artifact, moto_endpoint: str) -> None:
    replica = ObjectStoreReplica(
        name="dr",
        bucket="b",
        endpoint_url=moto_endpoint,
        access_key_env="SAFESNAP_TEST_UNSET_KEY",
        secret_key_env="SAFESNAP_TEST_UNSET_SECRET",
    )
    with pytest.raises(ProviderError, match="SAFESNAP_TEST_UNSET_KEY"):
        replicate_artifact(artifact, replica, target="tracker")
