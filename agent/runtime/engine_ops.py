"""Pull, build, run and lifecycle calls on the engine's unix socket, as the docker SDK makes them.

Every deployment makes these calls; through the SDK they would load requests and urllib3 into
every agent that ever deployed (about 8 MiB, bench/agent_cost.py). Each call sends what the SDK
sends for the same ``SdkOperations`` call (tests/unit/agent/test_engine_ops.py compares the
requests) and fails with the same ``RuntimeFailed`` messages. What the SDK applies from the
docker client configuration (``~/.docker/config.json``: registry credentials, proxies) is not
reimplemented: when it holds any, the SDK still serves pulls, builds and runs.
"""

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from agent.runtime import BuildLine, RunSpec, Started, relay_build_output
from agent.runtime.build_context import context_archive
from agent.runtime.engine_api import EngineApiError, EngineNotFound, UnixEngineApi
from agent.runtime.sdk_ops import SdkOperations, host_ports
from shared.errors import RuntimeFailed

logger = logging.getLogger(__name__)

# What the engine answers a create for a missing image; the SDK's list (ImageNotFound).
_IMAGE_MISSING: Final = (
    "no such image",
    "not found: does not exist or no pull access",
    "repository does not exist",
    "was found but does not match the specified platform",
)
_FAILURES = (EngineApiError, OSError)


def parse_repository_tag(image: str) -> tuple[str, str | None]:
    """The SDK's split: ``repo@digest``, ``repo:tag`` (a port is not a tag), or no tag."""
    repository, at, digest = image.rpartition("@")
    if at:
        return repository, digest
    repository, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag
    return image, None


def client_config_in_effect() -> bool:
    """Whether the docker client configuration holds what the SDK would apply to a deployment.

    Registry credentials (``auths``, ``credsStore``, ``credHelpers``) and ``proxies``; the file is
    the SDK's: ``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``, else ``~/.dockercfg``.
    An unreadable file counts as in effect: the SDK decides then, as before.
    """
    directory = os.environ.get("DOCKER_CONFIG")
    home = os.path.expanduser("~")
    candidates = [os.path.join(directory, "config.json")] if directory else []
    candidates += [os.path.join(home, ".docker", "config.json"), os.path.join(home, ".dockercfg")]
    for path in candidates:
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    config = json.load(handle)
            except (OSError, ValueError):
                return True
            if not isinstance(config, dict):
                return True
            keys = ("auths", "credsStore", "credHelpers", "proxies")
            return any(config.get(key) for key in keys)
    return False


def create_config(spec: RunSpec, extra_labels: dict[str, str]) -> dict[str, Any]:
    """The ``POST /containers/create`` body the SDK sends for ``SdkOperations.run``."""
    host: dict[str, Any] = {"NetworkMode": "default", "RestartPolicy": {"Name": "unless-stopped"}}
    config: dict[str, Any] = {
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Image": spec.image,
        "NetworkDisabled": False,
        "HostConfig": host,
        "Labels": {**spec.labels, **extra_labels},
    }
    if spec.environment:
        config["Env"] = [f"{key}={value}" for key, value in spec.environment.items()]
    if spec.command is not None:
        config["Entrypoint"] = ["/bin/sh", "-c"]
        config["Cmd"] = [spec.command]
    if spec.ports:
        keys = sorted({f"{port}/tcp" for port in spec.ports})
        config["ExposedPorts"] = {key: {} for key in keys}
        host["PortBindings"] = {key: [{"HostIp": "127.0.0.1", "HostPort": ""}] for key in keys}
    if spec.cpus is not None:
        host["NanoCpus"] = int(spec.cpus * 1_000_000_000)
    if spec.memory_bytes is not None:
        host["Memory"] = spec.memory_bytes
    return config


class EngineOperations:
    """``SdkOperations``' calls on the unix socket; the SDK only for what it alone applies."""

    def __init__(
        self,
        api: UnixEngineApi,
        slow: UnixEngineApi,
        sdk: Callable[[], SdkOperations],
        extra_labels: dict[str, str],
    ) -> None:
        self._api = api
        # Pulls and builds go quiet for minutes (a large layer, a long RUN step).
        self._slow = slow
        self._sdk = sdk
        self._extra_labels = extra_labels

    def image_id(self, image: str) -> str | None:
        """The local image's id, None when absent."""
        try:
            return str(self._api.inspect_image(image).get("Id"))
        except EngineNotFound:
            return None
        except _FAILURES as exc:
            raise RuntimeFailed(f"cannot inspect image {image}: {exc}") from exc

    def _pull(self, image: str) -> str:
        repository, tag = parse_repository_tag(image)
        tag = tag or "latest"
        for message in self._slow.stream(
            "POST", "/images/create", {"tag": tag, "fromImage": repository}
        ):
            # The SDK reads past these and fails at the lookup below with "No such image";
            # the engine's own reason says more.
            if message.get("error"):
                raise EngineApiError(str(message["error"]).strip())
        separator = "@" if tag.startswith("sha256:") else ":"
        return str(self._api.inspect_image(f"{repository}{separator}{tag}").get("Id"))

    def pull(self, image: str) -> str:
        """Pull ``image`` (no tag means latest); its id."""
        if client_config_in_effect():
            return self._sdk().pull(image)
        try:
            return self._pull(image)
        except _FAILURES as exc:
            raise RuntimeFailed(f"cannot pull image {image}: {exc}") from exc

    def build(
        self, context: Path, dockerfile: str, target: str | None, tag: str, on_line: BuildLine
    ) -> str:
        """Build ``context`` into ``tag``, output lines to ``on_line``; the image id."""
        relative = os.path.relpath(os.path.join(context, dockerfile), context)
        if client_config_in_effect() or relative.startswith(".."):
            # A Dockerfile outside the context: the SDK sends it under a random name.
            return self._sdk().build(context, dockerfile, target, tag, on_line)
        dockerfile = relative if os.path.isabs(dockerfile) else dockerfile
        params = {
            "t": tag,
            "q": "False",
            "nocache": "False",
            "rm": "True",
            "forcerm": "True",
            "pull": "False",
            "dockerfile": dockerfile,
        }
        if self._extra_labels:
            params["labels"] = json.dumps(self._extra_labels)
        if target is not None:
            params["target"] = target
        try:
            with tempfile.TemporaryFile() as body:
                context_archive(context, dockerfile, body)
                size = body.tell()
                body.seek(0)
                headers = {"Content-Type": "application/tar", "Content-Length": str(size)}
                stream = self._slow.stream("POST", "/build", params, body=body, headers=headers)
                last_error = relay_build_output(stream, on_line)
        except _FAILURES as exc:
            raise RuntimeFailed(f"docker build failed: {exc}") from exc
        if last_error:
            raise RuntimeFailed(f"docker build failed: {last_error}")
        image = self.image_id(tag)
        if image is None:
            raise RuntimeFailed(f"docker build produced no image {tag}")
        return image

    def remove_image_quietly(self, tag: str) -> None:
        """Force-remove ``tag``, logging the outcome (a canceled build's image)."""
        try:
            self._api.remove_image(tag, force=True)
            logger.info("removed image %s of a canceled build", tag)
        except EngineNotFound:
            logger.info("a canceled build left no image %s", tag)
        except _FAILURES:
            logger.warning("could not remove image %s of a canceled build", tag, exc_info=True)

    def _create(self, spec: RunSpec) -> str:
        config = create_config(spec, self._extra_labels)
        try:
            return str(self._api.create_container(spec.name, config)["Id"])
        except EngineNotFound as exc:
            # As the SDK's containers.run: a missing image is pulled, then created again.
            if not any(text in str(exc).lower() for text in _IMAGE_MISSING):
                raise
        self._pull(spec.image)
        return str(self._api.create_container(spec.name, config)["Id"])

    def run(self, spec: RunSpec) -> Started:
        """Create and start a container (the image is pulled when absent)."""
        if client_config_in_effect():
            return self._sdk().run(spec)
        try:
            container_id = self._create(spec)
            self._api.start_container(container_id)
            attrs = self._api.inspect_container(container_id)
            ports = host_ports(attrs)
        except _FAILURES as exc:
            raise RuntimeFailed(f"cannot start container {spec.name}: {exc}") from exc
        container_id = str(attrs.get("Id") or container_id)
        missing = [p for p in spec.ports if p not in ports]
        if missing:
            status = (attrs.get("State") or {}).get("Status")
            raise RuntimeFailed(
                f"container {spec.name} has no host port for {missing} (state {status})",
                details={"containerId": container_id},
            )
        return Started(container_id=container_id, name=spec.name, host_ports=ports)

    def act(self, container_id: str, action: str, grace: float) -> None:
        """``stop``, ``start``, ``restart`` or ``remove`` (forced) a container."""
        try:
            if action == "remove":
                self._api.remove_container(container_id, force=True)
            elif action == "stop":
                self._api.stop_container(container_id, int(grace + 0.999))
            elif action == "start":
                self._api.start_container(container_id)
            else:
                self._api.restart_container(container_id, int(grace + 0.999))
        except EngineNotFound:
            if action in ("remove", "stop"):
                return
            raise RuntimeFailed(f"container {container_id} does not exist") from None
        except _FAILURES as exc:
            raise RuntimeFailed(f"cannot {action} container {container_id}: {exc}") from exc
