"""The operator work ledger: every kind of Berth's background work in one list, with actions.

Registered kinds (``kinds.register``): deployments, notification deliveries, maintenance runs.
Task runs, backups and certificate issuance register their own ``WorkSource`` when they exist.
"""

from coordinator.operator_work.delivery_work import DeliveryWork
from coordinator.operator_work.deployment_work import DeploymentWork
from coordinator.operator_work.kinds import register
from coordinator.operator_work.maintenance_work import MaintenanceWork

register(DeploymentWork())
register(DeliveryWork())
register(MaintenanceWork())
