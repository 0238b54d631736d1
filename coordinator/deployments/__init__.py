"""Deployments: planning, durable state, the engine that drives agents, and event streaming."""

from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web

from coordinator import archive_prune
from coordinator.appkeys import ENGINE_KEY, KEYRING_KEY, REGISTRY_KEY, SETTINGS_KEY
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments import creation, planner, reads
from coordinator.deployments.engine import DeploymentEngine
from coordinator.deployments.planner import Plan
from coordinator.deployments.store import DeploymentStore
from coordinator.deployments.stream import Notifier
from coordinator.lookup import get_resource
from coordinator.secrets import Keyring
from shared.errors import Conflict


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    # After the database context, so the engine's tasks are canceled before the DB closes.
    async with app[ENGINE_KEY].running():
        yield


def install(app: web.Application) -> None:
    """Register the deployment engine (its hub listener and app key) and its background jobs:
    the engine's tasks, and pruning of uploaded archives nothing references any more."""
    engine = DeploymentEngine(app[REGISTRY_KEY], app[KEYRING_KEY], DeploymentStore(Notifier()))
    app[ENGINE_KEY] = engine
    app[REGISTRY_KEY].add_listener(engine)
    app.cleanup_ctx.append(_engine_ctx)
    app.cleanup_ctx.append(archive_prune.prune_job)


class Caller(Protocol):
    """What a route's call offers the adapters below (the request and who makes it)."""

    @property
    def request(self) -> web.Request: ...
    @property
    def actor(self) -> Principal: ...
    @property
    def request_id(self) -> str: ...
    @property
    def keyring(self) -> Keyring: ...


def engine_of(call: Caller) -> DeploymentEngine:
    """The app's deployment engine."""
    return call.request.app[ENGINE_KEY]


async def assess(call: Caller, target: planner.Target) -> Plan:
    """Run the planner for ``target`` with the app's keyring, registry and settings."""
    app = call.request.app
    return await planner.assess(target, app[KEYRING_KEY], app[REGISTRY_KEY], app[SETTINGS_KEY])


async def create_deployment(
    call: Caller,
    plan: Plan,
    *,
    trigger_kind: str,
    source_deployment_id: str | None = None,
    rollback_of: models.Deployment | None = None,
    candidate: models.Deployment | None = None,
) -> str:
    """Create and submit a deployment of ``plan`` on behalf of the caller."""
    return await creation.create(
        engine_of(call),
        call.keyring,
        call.actor,
        call.request_id,
        plan,
        trigger_kind=trigger_kind,
        source_deployment_id=source_deployment_id,
        rollback_of=rollback_of,
        candidate=candidate,
    )


async def replan(call: Caller, row: models.Deployment, server_id: str) -> Plan:
    """A fresh plan for ``row``'s resource on ``server_id`` with today's configuration, or the
    not-ready error naming what blocks it."""
    target = await planner.load_target(
        call.actor, row.project_id, row.environment_id, row.resource_id, server_id
    )
    assessed = await assess(call, target)
    if not assessed.ready:
        raise creation.not_ready([issue.code for issue in assessed.blocking])
    return assessed


async def redeploy(call: Caller, resource_id: str, server_id: str | None = None) -> str:
    """Deploy ``resource_id`` again with its current configuration, on ``server_id`` or the
    server of its latest deployment; the new deployment's id."""
    latest = await reads.latest_visible(call.actor, resource_id)
    if latest is None:
        # The token's scope applies, not only the organization: a resource the caller may not
        # see is a 404, never a 409 that confirms it exists.
        _ = await get_resource(call.actor, resource_id)
        raise Conflict("the resource has never been deployed; create a deployment first")
    assessed = await replan(call, latest, server_id or latest.server_id)
    return await create_deployment(
        call, assessed, trigger_kind="redeploy", source_deployment_id=latest.id
    )
