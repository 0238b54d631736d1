"""``resources.show`` diagnostics: variables that changed since the latest deployment's snapshot.

A deployment runs with the snapshot frozen at plan time; a variable changed afterwards is not in
effect until the next deployment. Secrets are compared in memory only: the answer shows
``****`` and no hash (a hash of a short secret can be guessed offline).
"""

from typing import Literal

from coordinator.db import models
from coordinator.deployments.store import reveal_snapshot
from coordinator.resource_config import load_resource_config
from coordinator.secrets import MASK, Keyring
from shared.wire import WireModel


class ConfigValue(WireModel):
    """One side of a comparison (``absent`` when the variable is not there)."""

    state: Literal["present", "absent"]
    display_value: str | None
    # Never filled: see the module docstring.
    value_hash: str | None = None


class ResourceDiagnostic(WireModel):
    """A variable whose value in effect differs from the one the latest deployment runs with."""

    code: Literal["variable-changed-since-deployment"] = "variable-changed-since-deployment"
    severity: Literal["warning"] = "warning"
    message: str
    path: str | None = None
    section: Literal["variables"] = "variables"
    field_path: str
    config_key: str
    config_exposure: str
    config_kind: Literal["secret", "plain-config"]
    config_scope: str | None
    config_source: Literal["resource"] = "resource"
    comparison: Literal["resource-vs-deployment-snapshot"] = "resource-vs-deployment-snapshot"
    resource_value: ConfigValue
    deployment_snapshot_value: ConfigValue
    latest_deployment_id: str
    config_pointer: str
    blocks_deployment_admission: bool = False
    suggested_command: Literal["resources.redeploy"] = "resources.redeploy"


def _scope(snapshot: dict[str, object] | None) -> str | None:
    scope = snapshot.get("scope") if snapshot else None
    return str(scope) if scope else None


def _side(value: str | None, secret: bool) -> ConfigValue:
    if value is None:
        return ConfigValue(state="absent", display_value=None)
    return ConfigValue(state="present", display_value=MASK if secret else value)


async def variable_drift(
    keyring: Keyring, row: models.Resource, latest: models.Deployment | None
) -> list[ResourceDiagnostic]:
    """Variables added, removed or changed since ``latest`` was planned (none without one)."""
    if latest is None or not latest.environment_snapshot:
        return []
    now = {(e.key, e.exposure): e for e in (await load_resource_config(keyring, row)).entries}
    ran = {
        (str(v["key"]), str(v["exposure"])): v
        for v in reveal_snapshot(keyring, latest.id, latest.environment_snapshot)
    }
    found: list[ResourceDiagnostic] = []
    for key, exposure in sorted(set(now) | set(ran)):
        current, snapshot = now.get((key, exposure)), ran.get((key, exposure))
        current_value = current.value if current else None
        snapshot_value = str(snapshot["value"]) if snapshot else None
        if current_value == snapshot_value:
            continue
        secret = bool((current and current.is_secret) or (snapshot and snapshot.get("isSecret")))
        found.append(
            ResourceDiagnostic(
                message=f"{key} ({exposure}) changed since deployment {latest.id}; "
                "redeploy to apply it",
                field_path=f"variables.{key}",
                config_key=key,
                config_exposure=exposure,
                config_kind="secret" if secret else "plain-config",
                config_scope=current.scope if current else _scope(snapshot),
                resource_value=_side(current_value, secret),
                deployment_snapshot_value=_side(snapshot_value, secret),
                latest_deployment_id=latest.id,
                config_pointer=f"/environmentSnapshot/variables/{key}",
            )
        )
    return found
