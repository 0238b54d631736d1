"""Typed aiohttp application keys, and nothing else."""

from typing import TYPE_CHECKING

from aiohttp import web

from coordinator.secrets import Keyring
from coordinator.server_roster import ServerRoster
from coordinator.settings import Settings

if TYPE_CHECKING:
    from coordinator.deployments.engine import DeploymentEngine
    from coordinator.hub.registry import Registry

SETTINGS_KEY = web.AppKey("settings", Settings)
REGISTRY_KEY: web.AppKey["Registry"] = web.AppKey("registry")
KEYRING_KEY = web.AppKey("keyring", Keyring)
ENGINE_KEY: web.AppKey["DeploymentEngine"] = web.AppKey("deployment_engine")
ROSTER_KEY = web.AppKey("server_roster", ServerRoster)
