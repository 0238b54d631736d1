"""What both backup-policy route modules (database and volume policies) share: a configure body
read into the service's request, and a stored policy shaped into its API item."""

from collections.abc import Iterable
from typing import TypeVar

from tortoise.models import Model

from coordinator.api.schemas import ApiRequest
from coordinator.backups.policy_store import PolicySettings
from shared.wire import WireModel

Request = TypeVar("Request", bound=PolicySettings)
Item = TypeVar("Item", bound=WireModel)


def request_of(body: ApiRequest, request: type[Request]) -> Request:
    """The service's request of a configure body: the body's fields are the request's fields
    (same names), so a field added to one and not the other fails every configure test."""
    return request(**body.model_dump(by_alias=False))


def item_of(item: type[Item], row: Model) -> Item:
    """``item`` with each field read off the stored policy (same names); ``version``, a counter
    in the store, is text on the wire as in the reference."""
    values = {name: getattr(row, name) for name in item.model_fields if name != "schema_version"}
    values["version"] = str(values["version"])
    return item.model_validate(values)


def items_of(item: type[Item], rows: Iterable[Model]) -> list[Item]:
    """``item_of`` for each stored policy, in order."""
    return [item_of(item, row) for row in rows]
