"""The operator work ledger: every kind of Berth's background work in one list, with actions.

Registered kinds: deployments and notification deliveries (``kinds.register``). Task runs,
backups and certificate issuance register their own ``WorkSource`` when they exist.
"""

from coordinator.operator_work.delivery_work import DeliveryWork
from coordinator.operator_work.deployment_work import DeploymentWork
from coordinator.operator_work.kinds import register

register(DeploymentWork())
register(DeliveryWork())
