"""A resource's stored configuration with defaults filled in, plus its effective variables.

``models.Resource`` keeps its profiles as camelCase JSON dicts exactly as the API models dump
them; a null column means "all defaults". This module is the one place that knows the defaults,
so the API (``resources.show/v1``) and the deployment planner read the same values.
"""

import copy
from dataclasses import dataclass, field
from typing import Any, Final

from coordinator import variables
from coordinator.db import models
from coordinator.dependencies import bindings as dependency_bindings
from coordinator.secrets import Keyring

# Defaults: the first member of every enum in the stored-configuration agreement.
DEFAULT_RUNTIME_PROFILE: Final[dict[str, Any]] = {
    "strategy": "auto",
    "startCommand": None,
    "dockerfilePath": "Dockerfile",
    "buildTarget": None,
    "cpus": None,
    "memoryBytes": None,
    "replicas": 1,
    "rolloutStrategy": "blue-green",
}
DEFAULT_NETWORK_PROFILE: Final[dict[str, Any]] = {
    "internalPort": 80,
    "upstreamProtocol": "http",
    "exposureMode": "reverse-proxy",
    "targetServiceName": None,
    "hostPort": None,
}
DEFAULT_HEALTH_POLICY: Final[dict[str, Any]] = {
    "enabled": True,
    "type": "http",
    "intervalSeconds": 2,
    "timeoutSeconds": 2,
    "retries": 10,
    "startPeriodSeconds": 0,
    "http": {
        "method": "GET",
        "scheme": "http",
        "host": None,
        "port": None,
        "path": "/",
        "expectedStatusCode": None,
        "expectedResponseText": None,
    },
}
DEFAULT_ACCESS_PROFILE: Final[dict[str, Any]] = {
    "generatedAccessMode": "inherit",
    "pathPrefix": "/",
}

# Lowest to highest: a resource entry replaces the environment entry with the same key+exposure.
PRECEDENCE: Final = ("environment", "resource")


@dataclass(frozen=True)
class ConfigEntry:
    """One effective variable; ``value`` is PLAINTEXT (secrets decrypted) - never return it."""

    key: str
    value: str
    exposure: str
    is_secret: bool
    scope: str  # "environment" | "resource"


@dataclass(frozen=True)
class ResourceConfig:
    """Everything a deployment needs to know about a resource, defaults filled in."""

    resource: models.Resource
    source: dict[str, Any] | None
    runtime_profile: dict[str, Any]
    network_profile: dict[str, Any]
    health_policy: dict[str, Any]
    access_profile: dict[str, Any]
    entries: list[ConfigEntry]
    # Private networks of bound dependency resources the deployment's containers join.
    dependency_networks: list[str] = field(default_factory=list)
    # Bound databases Berth runs, by id: the server each one runs on (apps must run there too).
    dependency_servers: dict[str, str] = field(default_factory=dict)
    # The bindings injected (``BoundEntry.reference``): the deployment's snapshot records them.
    dependency_bindings: list[dict[str, str]] = field(default_factory=list)


def with_defaults(defaults: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """``stored`` over a deep copy of ``defaults``; nested dicts merge, unknown keys are kept."""
    merged = copy.deepcopy(defaults)
    for key, value in (stored or {}).items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = with_defaults(base, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def runtime_profile(row: models.Resource) -> dict[str, Any]:
    """The resource's runtime profile with defaults."""
    return with_defaults(DEFAULT_RUNTIME_PROFILE, row.runtime_profile)


def network_profile(row: models.Resource) -> dict[str, Any]:
    """The resource's network profile with defaults."""
    return with_defaults(DEFAULT_NETWORK_PROFILE, row.network_profile)


def health_policy(row: models.Resource) -> dict[str, Any]:
    """The resource's health policy with defaults."""
    return with_defaults(DEFAULT_HEALTH_POLICY, row.health_policy)


def access_profile(row: models.Resource) -> dict[str, Any]:
    """The resource's access profile with defaults."""
    return with_defaults(DEFAULT_ACCESS_PROFILE, row.access_profile)


async def effective_rows(resource: models.Resource) -> list[tuple[models.Variable, str]]:
    """Variable rows in effect for ``resource`` with their scope, ordered by key then exposure."""
    environment_id: str = resource.environment_id  # type: ignore[attr-defined]
    layers = {
        "environment": await variables.list_variables("environment", environment_id),
        "resource": await variables.list_variables("resource", resource.id),
    }
    effective: dict[tuple[str, str], tuple[models.Variable, str]] = {}
    for scope in PRECEDENCE:
        for row in layers[scope]:
            effective[(row.key, row.exposure)] = (row, scope)
    return [effective[k] for k in sorted(effective)]


async def load_resource_config(keyring: Keyring, resource: models.Resource) -> ResourceConfig:
    """Read a resource's configuration; variable values come back decrypted."""
    entries = [
        ConfigEntry(
            key=row.key,
            value=variables.reveal(keyring, row),
            exposure=row.exposure,
            is_secret=row.is_secret,
            scope=scope,
        )
        for row, scope in await effective_rows(resource)
    ]
    # Dependency bindings come last and win: the binding is the explicit, newer choice.
    bound = await dependency_bindings.bound_entries(keyring, resource.id)
    names = {entry.target_name for entry in bound}
    entries = [e for e in entries if not (e.key in names and e.exposure == "runtime")]
    entries += [
        ConfigEntry(
            key=entry.target_name,
            value=entry.url,
            exposure="runtime",
            is_secret=True,
            scope=dependency_bindings.BINDING_SCOPE,
        )
        for entry in bound
    ]
    return ResourceConfig(
        resource=resource,
        source=copy.deepcopy(resource.source) if resource.source else None,
        runtime_profile=runtime_profile(resource),
        network_profile=network_profile(resource),
        health_policy=health_policy(resource),
        access_profile=access_profile(resource),
        entries=entries,
        dependency_networks=sorted({e.network for e in bound if e.network}),
        dependency_servers={
            e.dependency_resource_id: e.server_id for e in bound if e.server_id is not None
        },
        dependency_bindings=[entry.reference() for entry in bound],
    )


__all__ = [
    "DEFAULT_ACCESS_PROFILE",
    "DEFAULT_HEALTH_POLICY",
    "DEFAULT_NETWORK_PROFILE",
    "DEFAULT_RUNTIME_PROFILE",
    "PRECEDENCE",
    "ConfigEntry",
    "ResourceConfig",
    "effective_rows",
    "load_resource_config",
    "with_defaults",
]
