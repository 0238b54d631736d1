"""The operator work ledger: every kind of Berth's background work in one list, with actions.

Registered kinds (``kinds.register``): deployments, notification deliveries, maintenance runs,
task runs. Backups and certificate issuance register their own ``WorkSource`` when they exist.
"""

from coordinator.operator_work.delivery_work import DeliveryWork
from coordinator.operator_work.deployment_work import DeploymentWork
from coordinator.operator_work.kinds import register
from coordinator.operator_work.maintenance_work import MaintenanceWork
from coordinator.operator_work.task_run_work import TaskRunWork

register(DeploymentWork())
register(DeliveryWork())
register(MaintenanceWork())
register(TaskRunWork())
