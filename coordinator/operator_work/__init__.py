"""The operator work ledger: every kind of Berth's background work in one list, with actions.

Registered kinds (``kinds.register``): deployments, notification deliveries, maintenance runs,
task runs, certificate attempts (edge-issued and DNS-01), backups (with their restores and
verifications).
"""

from coordinator.operator_work.backup_work import BackupWork, RestoreWork, VerificationWork
from coordinator.operator_work.certificate_work import CertificateWork
from coordinator.operator_work.delivery_work import DeliveryWork
from coordinator.operator_work.deployment_work import DeploymentWork
from coordinator.operator_work.kinds import register
from coordinator.operator_work.maintenance_work import MaintenanceWork
from coordinator.operator_work.task_run_work import TaskRunWork
from coordinator.operator_work.wildcard_work import WildcardWork

register(DeploymentWork())
register(DeliveryWork())
register(MaintenanceWork())
register(TaskRunWork())
register(CertificateWork())
register(BackupWork())
register(RestoreWork())
register(VerificationWork())
register(WildcardWork())
