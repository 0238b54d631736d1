"""Organization A's data set for the cross-tenant tests: one row of every kind an id can name.

Made through the API wherever the API can make it (a scheduled task needs a live deployment, so
the task and its run are written as rows), with a real enrolled agent whose host shell backs a
real terminal session, and a fake-agent server for deployments.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coordinator import work_runs
from coordinator.db import (
    backup_models,
    backup_target_models,
    certificate_models,
    dns01_models,
    task_models,
    volume_backup_models,
    volume_policy_models,
)
from coordinator.ids import new_id
from coordinator.permissions import PERMISSIONS
from tests.dns_server import ZONE
from tests.harness import AgentProcess, Coordinator
from tests.integration.stacks import start_agent
from tests.tenancy import Tenant
from tests.tls_material import issue_for
from tests.unit.coordinator.support import mint_token
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world


async def call_ok(coordinator: Coordinator, method: str, path: str, token: str, **kw: Any) -> Any:
    status, body, _ = await coordinator.call(method, path, token=token, **kw)
    assert status in (200, 201, 202), (method, path, body)
    return body


async def organization_a(
    coordinator: Coordinator, root: Path, password: str
) -> tuple[Tenant, AgentProcess]:
    """Organization A (the bootstrap's) with one row of every kind an id can name."""
    status, body, _ = await coordinator.call(
        "POST",
        "/bootstrap/auth/first-admin",
        json={"email": "admin@alpha.example.com", "displayName": "Alpha", "password": password},
    )
    assert status == 201, body
    admin = str(body["apiToken"])
    login = await call_ok(
        coordinator,
        "POST",
        "/auth/login",
        admin,
        json={"email": "admin@alpha.example.com", "password": password},
    )
    world = await make_world(coordinator, admin, name="alpha")
    deployment = await create_deployment(coordinator, admin, world)
    other_env = await call_ok(
        coordinator,
        "POST",
        "/environments",
        admin,
        json={"projectId": world.project_id, "name": "staging"},
    )
    domain = f"alpha.{ZONE}"
    binding = await call_ok(
        coordinator,
        "POST",
        "/domain-bindings",
        admin,
        json={**world.target(), "domainName": domain},
    )
    issued = issue_for([domain])
    certificate = await call_ok(
        coordinator,
        "POST",
        "/certificates/import",
        admin,
        json={
            "domainBindingId": binding["id"],
            "certificateChain": issued.chain(),
            "privateKey": issued.key_pem(),
        },
    )
    volume = await call_ok(
        coordinator,
        "POST",
        "/storage-volumes",
        admin,
        json={
            "projectId": world.project_id,
            "environmentId": world.environment_id,
            "name": "Data",
            "kind": "named-volume",
        },
    )
    attachment = await call_ok(
        coordinator,
        "POST",
        f"/resources/{world.resource_id}/storage-attachments",
        admin,
        json={"storageVolumeId": volume["id"], "destinationPath": "/var/lib/app/"},
    )
    database = await call_ok(
        coordinator,
        "POST",
        "/dependency-resources/import",
        admin,
        json={
            "kind": "postgres",
            "projectId": world.project_id,
            "environmentId": world.environment_id,
            "name": "alpha-db",
            "connectionUrl": "postgres://u:alpha-pw@db.example.com/app",
        },
    )
    dependency_binding = await call_ok(
        coordinator,
        "POST",
        f"/resources/{world.resource_id}/dependency-bindings",
        admin,
        json={"dependencyResourceId": database["id"], "targetName": "DATABASE_URL"},
    )
    plan = await call_ok(
        coordinator,
        "POST",
        "/dependency-resources/provisioning/plan",
        admin,
        json={
            "create": {
                "kind": "redis",
                "projectId": world.project_id,
                "environmentId": world.environment_id,
                "name": "alpha-cache",
                "serverId": world.server_id,
            }
        },
    )
    subscription = await call_ok(
        coordinator,
        "POST",
        "/notification-subscriptions",
        admin,
        json={
            "name": "alpha",
            "channel": "webhook",
            "events": ["deployment.failed"],
            "url": "https://hooks.example.test/berth",
            "signingSecret": "alpha-signing-secret-0123",
        },
    )
    _ = await call_ok(
        coordinator,
        "POST",
        f"/resources/{world.resource_id}/secrets",
        admin,
        json={"key": "MODE", "value": "alpha-secret"},
    )
    _ = await call_ok(
        coordinator,
        "POST",
        "/retention-defaults",
        admin,
        json={"category": "audit-rows", "retentionDays": 30},
    )
    # Background work of the two other kinds the operator work ledger lists (a deployment is
    # the first): a notification delivery and a maintenance run.
    delivery = await call_ok(
        coordinator, "POST", f"/notification-subscriptions/{subscription['id']}/test", admin
    )
    maintenance = await work_runs.record_finished(
        "capacity-prune",
        organization_id="org_default",
        server_id=world.server_id,
        started_at=datetime.now(UTC),
        details={"dryRun": True},
    )
    policy = await call_ok(
        coordinator,
        "POST",
        "/runtime-monitoring/thresholds",
        admin,
        json={
            "scope": {"kind": "resource", "resourceId": world.resource_id},
            "rules": [
                {"signal": "cpu", "metric": "containerCpuPercent", "warning": 70, "critical": 90}
            ],
        },
    )
    task_id, run_id = await _task_and_run(world.project_id, world.environment_id, world)
    token = await mint_token(coordinator, admin, ["servers:read"], name="alpha-ci")
    # A real agent (host shell allowed) for a real terminal session.
    agent, host_id = await start_agent(
        coordinator,
        admin,
        root / "agent",
        name="alpha-host",
        env={"BERTH_AGENT_ALLOW_HOST_SHELL": "1"},
    )
    terminal = await call_ok(
        coordinator,
        "POST",
        "/terminal-sessions",
        admin,
        json={"scope": {"kind": "server", "serverId": host_id}},
    )
    # A token of A itself, with every permission but only another project: A's rows outside
    # that project must look as absent to it as they do to organization B.
    elsewhere = await call_ok(coordinator, "POST", "/projects", admin, json={"name": "elsewhere"})
    scoped = await call_ok(
        coordinator,
        "POST",
        "/deploy-tokens",
        admin,
        json={
            "displayName": "elsewhere",
            "scope": {"permissions": list(PERMISSIONS), "projectIds": [elsewhere["id"]]},
        },
    )
    # One of the resource's events (the secret's): queries aim ``aggregateId`` at the resource.
    events = await call_ok(
        coordinator, "GET", f"/audit-events?limit=1&aggregateId={world.resource_id}", admin
    )
    members = await call_ok(coordinator, "GET", "/organizations/org_default/members", admin)
    invitation = await call_ok(
        coordinator,
        "POST",
        "/organizations/org_default/invitations",
        admin,
        json={"email": "invited@alpha.example.com", "role": "viewer"},
    )
    later = await _later_rows(
        str(volume["id"]),
        world.project_id,
        world.environment_id,
        str(database["id"]),
        world.server_id,
    )
    await world.agent.close()
    ids = {
        "organizationId": "org_default",
        "serverId": world.server_id,
        "hostServerId": host_id,
        "projectId": world.project_id,
        "environmentId": world.environment_id,
        "otherEnvironmentId": str(other_env["id"]),
        "resourceId": world.resource_id,
        "deploymentId": deployment,
        "workId": deployment,
        "deliveryWorkId": str(delivery["deliveryId"]),
        "maintenanceWorkId": maintenance,
        "domainBindingId": str(binding["id"]),
        "certificateId": str(certificate["certificateId"]),
        "storageVolumeId": str(volume["id"]),
        "attachmentId": str(attachment["id"]),
        "dependencyResourceId": str(database["id"]),
        "bindingId": str(dependency_binding["id"]),
        "planId": str(plan["plan"]["id"]),
        "subscriptionId": str(subscription["id"]),
        "taskId": task_id,
        "policyId": str(policy["policy"]["policyId"]),
        "runId": run_id,
        "tokenId": str(token["tokenId"]),
        "terminalSessionId": str(terminal["sessionId"]),
        "terminalTicket": str(terminal["transport"]["ticket"]),
        "accountSessionId": str(login["sessionId"]),
        "auditEventId": str(events["items"][0]["auditEventId"]),
        "key": "MODE",
        "category": "audit-rows",
        "projectScopedToken": str(scoped["token"]),
        "memberId": str(members["items"][0]["memberId"]),
        "invitationId": str(invitation["invitationId"]),
        **later,
        **await _ledger_rows(later, str(certificate["certificateId"])),
    }
    return Tenant("org_default", admin, ids), agent


async def _task_and_run(project_id: str, environment_id: str, world: Any) -> tuple[str, str]:
    """A disabled scheduled task and one finished run (rows: a task needs a live deployment)."""
    now = datetime.now(UTC)
    task = await task_models.ScheduledTask.create(
        id=new_id("task"),
        organization_id="org_default",
        project_id=project_id,
        environment_id=environment_id,
        resource_id=world.resource_id,
        schedule="0 3 * * *",
        command_intent="echo alpha",
        timeout_seconds=60,
        status="disabled",
        created_at=now,
        updated_at=now,
    )
    run = await task_models.ScheduledTaskRun.create(
        id=new_id("run"),
        organization_id="org_default",
        project_id=project_id,
        environment_id=environment_id,
        task_id=task.id,
        resource_id=world.resource_id,
        trigger_kind="manual",
        slot_key=f"manual:{now.isoformat()}",
        status="succeeded",
        not_before=now,
        created_at=now,
        finished_at=now,
        exit_code=0,
    )
    return task.id, run.id


async def _later_rows(
    volume_id: str, project_id: str, environment_id: str, dependency_id: str, server_id: str
) -> dict[str, str]:
    """Rows of the later capabilities that need a real database, CA or DNS server to come
    about through the API: a backup and its policy, a DNS provider and a wildcard certificate.
    The walk only needs them to exist in organization A."""
    now = datetime.now(UTC)
    backup = await backup_models.DependencyBackup.create(
        id=new_id("dbk"),
        organization_id="org_default",
        project_id=project_id,
        environment_id=environment_id,
        dependency_resource_id=dependency_id,
        server_id=server_id,
        dependency_kind="postgres",
        provider_key="berth-agent",
        status="failed",
        attempt_id=new_id("att"),
        requested_at=now,
        failed_at=now,
        failure_code="test",
        failure_message="a row for the tenancy walk",
        created_at=now,
    )
    policy = await backup_models.DependencyBackupPolicy.create(
        id=new_id("dbp"),
        organization_id="org_default",
        project_id=project_id,
        environment_id=environment_id,
        dependency_resource_id=dependency_id,
        provider_key="berth-agent",
        schedule_interval_hours=24,
        retention_days=7,
        enabled=False,
        updated_at=now,
    )
    provider = await dns01_models.DnsProvider.create(
        id=new_id("dnp"),
        organization_id="org_default",
        name="alpha-dns",
        server_host="192.0.2.53",
        zone="alpha.example.com",
        tsig_key_name="berth",
        tsig_algorithm="hmac-sha256",
        tsig_secret_encrypted="not-a-secret",
        created_at=now,
    )
    wildcard = await dns01_models.WildcardCertificate.create(
        id=new_id("wcr"),
        organization_id="org_default",
        dns_provider_id=provider.id,
        domain_name="apps.alpha.example.com",
        status="failed",
        acme_directory="https://ca.example.com/dir",
        created_at=now,
    )
    volume_backup = await volume_backup_models.StorageVolumeBackup.create(
        id=new_id("vbk"),
        organization_id="org_default",
        project_id=project_id,
        environment_id=environment_id,
        storage_volume_id=volume_id,
        server_id=server_id,
        status="failed",
        attempt_id=new_id("att"),
        requested_at=now,
        failed_at=now,
        failure_code="test",
        failure_message="a row for the tenancy walk",
        created_at=now,
    )
    volume_policy = await volume_policy_models.StorageVolumeBackupPolicy.create(
        id=new_id("vbp"),
        organization_id="org_default",
        project_id=project_id,
        environment_id=environment_id,
        storage_volume_id=volume_id,
        schedule_interval_hours=24,
        retention_days=7,
        enabled=False,
        updated_at=now,
    )
    target = await backup_target_models.BackupTarget.create(
        id=new_id("bkt"),
        organization_id="org_default",
        name="alpha-bucket",
        kind="s3",
        endpoint_url="https://s3.alpha.example.com",
        region="us-east-1",
        bucket="alpha-backups",
        access_key_id="alpha",
        secret_access_key_encrypted="not-a-secret",
        created_at=now,
    )
    return {
        "backupId": backup.id,
        "volumeBackupId": volume_backup.id,
        "backupPolicyId": policy.id,
        "dnsProviderId": provider.id,
        "wildcardCertificateId": wildcard.id,
        "backupTargetId": target.id,
        "volumeBackupPolicyId": volume_policy.id,
    }


async def _ledger_rows(later: dict[str, str], certificate_id: str) -> dict[str, str]:
    """Operator work of the certificate and backup kinds: a failed certificate attempt and DNS-01
    attempt, and a restore and verification of the backup (whose work ids the ledger derives)."""
    now = datetime.now(UTC)
    attempt = await certificate_models.CertificateAttempt.create(
        id=new_id("cat"),
        certificate_id=certificate_id,
        status="failed",
        provider_key="caddy-acme",
        requested_at=now,
        failed_at=now,
        error_code="acme_rate_limited",
    )
    order = await dns01_models.WildcardCertificateAttempt.create(
        id=new_id("wca"),
        certificate_id=later["wildcardCertificateId"],
        status="failed",
        provider_key="rfc2136",
        requested_at=now,
        failed_at=now,
        error_code="dns_server_unreachable",
    )
    restore = new_id("rsa")
    await backup_models.DependencyBackup.filter(id=later["backupId"]).update(
        restore_attempt_id=restore,
        restore_status="failed",
        restore_requested_at=now,
        restore_failed_at=now,
        verification_status="failed",
        verification_requested_at=now,
        verified_at=now,
    )
    return {
        "certificateWorkId": attempt.id,
        "wildcardWorkId": order.id,
        "backupWorkId": later["backupId"],
        "restoreWorkId": restore,
        "verificationWorkId": f"vrf_{later['backupId']}",
    }
