"""Each resource's durable domain route: its newest domain binding whose ownership is proven."""

from coordinator.db import models


async def latest_bound(resource_ids: list[str]) -> dict[str, models.DomainBinding]:
    """The newest bound binding of each resource (one query for a page of resources).

    Only a bound binding routes traffic: a pending one has not proven its domain yet. The caller
    has authorized ``resource_ids``; a binding always belongs to its resource's organization.
    """
    if not resource_ids:
        return {}
    rows = await models.DomainBinding.filter(resource_id__in=resource_ids, status="bound").order_by(
        "-ownership_confirmed_at", "-created_at", "-id"
    )
    found: dict[str, models.DomainBinding] = {}
    for row in rows:
        resource_id: str = row.resource_id  # type: ignore[attr-defined]
        if resource_id not in found:
            found[resource_id] = row
    return found
