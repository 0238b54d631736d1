"""Public HTTP API: route modules register themselves on import; ``setup_routes`` mounts them."""

from aiohttp import web

from coordinator.api import (  # noqa: F401  (imported for their route registrations)
    access_failures,
    account,
    audit_events,
    audit_exports,
    backup_targets,
    bootstrap,
    certificates,
    default_access,
    dependency_backup_policies,
    dependency_backups,
    dependency_bindings,
    dependency_resources,
    deploy_tokens,
    deployment_commands,
    deployment_plans,
    deployments,
    dns01,
    domain_bindings,
    edge_proxy,
    enrollment,
    environments,
    meta,
    notifications,
    operator_work,
    organization_invitations,
    organizations,
    projects,
    resource_runtime,
    resource_variables,
    resources,
    retention,
    runtime_logs,
    runtime_monitoring,
    runtime_thresholds,
    runtime_usage,
    scheduled_tasks,
    server_capacity,
    servers,
    source_archives,
    storage_volume_backup_policies,
    storage_volume_backups,
    storage_volumes,
    terminal_sessions,
)
from coordinator.api.routing import ROUTES, build_handler


def setup_routes(app: web.Application) -> None:
    """Mount every registered route on ``app``, with its models ready to use.

    Wire models defer building their validators (the agent only builds what it uses); the
    coordinator builds its routes' models here (~50 ms once) so the first request of each
    kind does not pay for it while the event loop is busy.
    """
    for route in ROUTES:
        app.router.add_route(route.method, route.path, build_handler(route))
        for model in (route.body, route.query, route.response):
            if model is not None:
                _ = model.model_rebuild(force=True)
