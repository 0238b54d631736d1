"""Secret masking for runtime log lines: every secret value of the resource becomes ``****``.

Built for 50k+ lines/s: one compiled alternation, and one search over a whole chunk's text
first, so the common chunk without any secret costs a single regex scan.
"""

import logging
import re
from collections.abc import Iterable
from typing import Final

from coordinator.db import models
from coordinator.deployments.store import reveal_snapshot
from coordinator.resource_config import load_resource_config
from coordinator.secrets import MASK, Keyring, SecretError

logger = logging.getLogger(__name__)

# Shorter values would mask ordinary text ("1", "on"); the deployment log masker agrees.
MIN_SECRET_LENGTH: Final = 3
# Deployments whose sealed snapshots still matter: containers of older ones are long gone.
RECENT_DEPLOYMENTS: Final = 20


class LineMasker:
    """Replaces known secret values (longest first) in log messages."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    @property
    def active(self) -> bool:
        """Whether there is anything to mask at all."""
        return self._pattern is not None

    def mask_all(self, messages: list[str]) -> list[tuple[str, bool]] | None:
        """Masked copies of ``messages`` with a per-line flag, or None when none has a secret."""
        pattern = self._pattern
        if pattern is None or not messages:
            return None
        # Joined with a character no secret can span into, so a hit is inside one line.
        if pattern.search("\0".join(messages)) is None:
            return None
        result: list[tuple[str, bool]] = []
        for text in messages:
            masked, count = pattern.subn(MASK, text)
            result.append((masked, count > 0))
        return result


async def resource_masker(keyring: Keyring, resource: models.Resource) -> LineMasker:
    """The masker for ``resource``: its current secrets plus those its recent deployments ran
    with (a container keeps the value it was started with after the secret changes)."""
    config = await load_resource_config(keyring, resource)
    values = [entry.value for entry in config.entries if entry.is_secret]
    deployments = (
        await models.Deployment.filter(resource_id=resource.id)
        .order_by("-created_at")
        .limit(RECENT_DEPLOYMENTS)
    )
    for row in deployments:
        try:
            revealed = reveal_snapshot(keyring, row.id, row.environment_snapshot or {})
        except (SecretError, KeyError, ValueError):
            logger.warning("could not reveal the snapshot of deployment %s for masking", row.id)
            continue
        values.extend(str(v.get("value", "")) for v in revealed if v.get("isSecret"))
    return LineMasker(values)
