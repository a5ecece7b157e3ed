"""The run's replicate step: upload each new artifact to every replica, then apply the
replica's retention. The work lives in safesnap.replicas; this module is the run's seam."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safesnap.artifacts.store import ArtifactInfo
from safesnap.config.plan import Plan
from safesnap.errors import SafesnapError
from safesnap.replicas.client import object_key as object_key
from safesnap.replicas.client import object_store_client as object_store_client
from safesnap.replicas.prune import prune_replica
from safesnap.replicas.upload import replicate_artifact as replicate_artifact


def replicate_to_all(
    plan: Plan, artifact: ArtifactInfo, *, target: str, env_file: Path | None = None
) -> dict[str, Any]:
    """Every replica gets its try; the first failure is raised after the others ran."""
    recipients = plan.encryption.recipients if plan.encryption else []
    copies: list[dict[str, Any]] = []
    errors: list[SafesnapError] = []
    for replica in plan.replicas:
        try:
            copy = replicate_artifact(
                artifact, replica, target=target, env_file=env_file, recipients=recipients
            )
            pruned = prune_replica(replica, plan.retention, target=target, env_file=env_file)
            copy["pruned"] = pruned.deleted
            copy["kept"] = len(pruned.kept)
            copies.append(copy)
        except SafesnapError as exc:
            copies.append({"replica": replica.name, "error": exc.to_dict()})
            errors.append(exc)
    if errors:
        raise errors[0]
    return {"replicas": copies}
