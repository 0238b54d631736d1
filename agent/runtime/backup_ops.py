"""Engine calls that dump a database from its container and restore one into it, streamed.

A dump is ``pg_dump -Fc`` run by ``docker exec`` in the database's own container; its stdout
is read frame by frame from the engine's multiplexed stream, so at most one chunk is held. A
PostgreSQL or MariaDB restore streams into the restore command's stdin (``restore_stream``);
a Redis restore uploads the RDB into the container (``PUT /containers/{name}/archive``, the
body fed chunk by chunk from a small queue), swaps it in, then removes the file.
"""

import asyncio
import contextlib
import io
import json
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from agent.http_client import Response
from agent.runtime import EngineError, redis_scripts
from agent.runtime.engine import EngineClient, quoted
from shared.messages import BackupTarget, dependency_names

_JSON: Final = {"Content-Type": "application/json"}
_STDOUT: Final = 1
# Every user table and the exact sum of their rows (count(*) per table, not statistics).
_COUNTS: Final = (
    "select count(*) || '|' || coalesce(sum((xpath('/row/c/text()', query_to_xml("
    "format('select count(*) as c from %I.%I', table_schema, table_name), false, true, ''"
    ")))[1]::text::bigint), 0) from information_schema.tables"
    " where table_type = 'BASE TABLE'"
    " and table_schema not in ('pg_catalog', 'information_schema')"
)
_RESTORE: Final = ("pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error")
_STDERR_KEEP: Final = 4096
# How long Redis may take to load the restored data before the restore counts as failed.
_REDIS_READY_SECONDS: Final = 600.0
# The dump file's place in the container during a restore (removed afterwards).
RESTORE_DIR: Final = "/tmp"  # noqa: S108 - inside the database's container, not on the host


# MariaDB: each user table's exact row count, summed in the shell (no dynamic SQL needed).
_MYSQL_COUNTS: Final = (
    'set -e; n=0; rows=0; for t in $(mariadb -h 127.0.0.1 -u "$0" -N -B "$1" -e '
    '"select table_name from information_schema.tables where table_schema = database()'
    " and table_type = 'BASE TABLE'\"); do "
    r'c=$(mariadb -h 127.0.0.1 -u "$0" -N -B "$1" -e "select count(*) from \`$t\`");'
    ' n=$((n + 1)); rows=$((rows + c)); done; echo "$n|$rows"'
)


@dataclass(frozen=True)
class Commands:
    """The dump, restore and count commands of one kind, run in the database's container.

    They log in over TCP on the container's loopback with the password in the environment:
    the same login an app makes, whatever the image's local trust rules are.
    """

    dump: list[str]
    counts: list[str]
    env: dict[str, str]
    restore_prefix: list[str]

    def restore(self, path: str) -> list[str]:
        """The restore command of the dump file at ``path``."""
        return [*self.restore_prefix, path]


def commands(target: BackupTarget) -> Commands:
    """``pg_dump -Fc``/``pg_restore`` for PostgreSQL, ``mariadb-dump --single-transaction``/
    ``mariadb < file`` for MySQL (MariaDB), ``BGSAVE`` + the RDB file for Redis (its restore
    command only prepares the AOF directory: see ``restore``); other kinds are refused. The
    agent restores PostgreSQL and MariaDB streamed instead (``restore_stream``), so only
    Redis's file restore is used; the others stay for a file already in the container."""
    user, database = target.username, target.database_name
    match target.kind:
        case "postgres":
            login = ["-h", "127.0.0.1", "-U", user, "-d", database]
            return Commands(
                dump=["pg_dump", "-Fc", "--no-owner", *login],
                counts=["psql", *login, "-tAc", _COUNTS],
                env={"PGPASSWORD": target.password},
                restore_prefix=[*_RESTORE, *login],
            )
        case "mysql":
            login = ["-h", "127.0.0.1", "-u", user]
            return Commands(
                dump=["mariadb-dump", "--single-transaction", *login, database],
                counts=["sh", "-c", _MYSQL_COUNTS, user, database],
                env={"MYSQL_PWD": target.password},
                restore_prefix=[
                    "sh",
                    "-c",
                    'mariadb -h 127.0.0.1 -u "$0" "$1" < "$2"',
                    user,
                    database,
                ],
            )
        case "redis":
            return Commands(
                dump=["sh", "-c", redis_scripts.DUMP],
                counts=["sh", "-c", redis_scripts.COUNTS],
                env={"REDISCLI_AUTH": target.password},
                restore_prefix=["sh", "-c", redis_scripts.PREPARE],
            )
        case _:
            raise EngineError(f"backups of {target.kind} are not supported yet")


class DumpStream:
    """One running dump: ``read`` returns its next stdout bytes; ``b''`` at the end."""

    def __init__(self, api: EngineClient, exec_id: str, response: Response) -> None:
        self._api = api
        self._exec_id = exec_id
        self._response = response
        self._left = 0
        self._stderr = bytearray()

    async def read(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the dump; raises when the stream ended with a failure."""
        content = self._response
        try:
            while True:
                if self._left == 0:
                    try:
                        header = await content.readexactly(8)
                    except asyncio.IncompleteReadError as exc:
                        if exc.partial:
                            raise EngineError("the dump stream ended mid-frame") from exc
                        await self._check_exit()
                        return b""
                    self._stream = header[0]
                    self._left = int.from_bytes(header[4:8], "big")
                    continue
                data = await content.read(min(limit, self._left))
                if not data:
                    raise EngineError("the dump stream ended mid-frame")
                self._left -= len(data)
                if self._stream == _STDOUT:
                    return data
                self._stderr += data
                del self._stderr[:-_STDERR_KEEP]
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"the dump stream broke off: {exc!r}") from exc

    async def _check_exit(self) -> None:
        info = await self._api.json("GET", f"/exec/{self._exec_id}/json")
        code = int(info.get("ExitCode") or 0) if isinstance(info, dict) else -1
        if code != 0:
            text = self._stderr.decode("utf-8", "replace").strip()
            raise EngineError(f"the dump exited with {code}: {text[-1000:]}")

    def close(self) -> None:
        """Stop reading (the engine ends the exec's output stream)."""
        self._response.close()


class BackupOps:
    """Dump and restore through the agent's one engine client."""

    def __init__(self, api: EngineClient) -> None:
        self._api = api

    @property
    def engine(self) -> EngineClient:
        """The engine client (a streamed restore runs through it too)."""
        return self._api

    async def _exec(self, name: str, command: list[str], env: dict[str, str]) -> str:
        created = await self._api.json(
            "POST",
            f"/containers/{quoted(name)}/exec",
            body=json.dumps(
                {
                    "Cmd": command,
                    "Env": [f"{k}={v}" for k, v in env.items()],
                    "AttachStdout": True,
                    "AttachStderr": True,
                }
            ).encode(),
            headers=_JSON,
        )
        return quoted(str(created["Id"]))

    async def dump(self, target: BackupTarget) -> DumpStream:
        """Start the kind's dump in the database's container; read its output from the stream."""
        name, _, _ = dependency_names(target.dependency_resource_id)
        run = commands(target)
        exec_id = await self._exec(name, run.dump, run.env)
        response = await self._api.open(
            "POST",
            f"/exec/{exec_id}/start",
            body=json.dumps({"Detach": False, "Tty": False}).encode(),
            headers=_JSON,
            timeout=0,
        )
        return DumpStream(self._api, exec_id, response)

    async def upload(
        self, target: BackupTarget, file_name: str, size: int, chunks: AsyncIterator[bytes]
    ) -> None:
        """Stream ``size`` bytes from ``chunks`` into the container as ``RESTORE_DIR/file_name``."""
        name, _, _ = dependency_names(target.dependency_resource_id)
        info = tarfile.TarInfo(file_name)
        info.size = size
        info.mode = 0o644

        async def body() -> AsyncIterator[bytes]:
            yield info.tobuf(format=tarfile.GNU_FORMAT)
            sent = 0
            async for chunk in chunks:
                sent += len(chunk)
                if sent > size:
                    raise EngineError("the restore sent more bytes than announced")
                yield chunk
            if sent != size:
                raise EngineError(f"the restore ended after {sent} of {size} bytes")
            padding = (-size) % tarfile.BLOCKSIZE
            yield b"\0" * padding + b"\0" * (2 * tarfile.BLOCKSIZE)

        await self._api.read(
            "PUT",
            f"/containers/{quoted(name)}/archive",
            {"path": RESTORE_DIR},
            body=body(),
            headers={"Content-Type": "application/x-tar"},
            timeout=0,
        )

    async def counts(self, target: BackupTarget) -> tuple[int, int]:
        """The database's user tables and their exact total row count (a verification)."""
        name, _, _ = dependency_names(target.dependency_resource_id)
        run = commands(target)
        code, output = await self._run(name, run.counts, run.env)
        tables, _, rows = output.strip().partition("|")
        if code != 0 or not tables.isdigit() or not rows.isdigit():
            raise EngineError(f"counting the restored rows failed ({code}): {output[-500:]}")
        return int(tables), int(rows)

    async def _run(self, name: str, command: list[str], env: dict[str, str]) -> tuple[int, str]:
        exec_id = await self._exec(name, command, env)
        raw = await self._api.read(
            "POST",
            f"/exec/{exec_id}/start",
            body=json.dumps({"Detach": False, "Tty": False}).encode(),
            headers=_JSON,
            timeout=0,
        )
        info = await self._api.json("GET", f"/exec/{exec_id}/json")
        code = int(info.get("ExitCode") or 0) if isinstance(info, dict) else -1
        return code, _demux(raw)

    async def restore(self, target: BackupTarget, file_name: str) -> None:
        """Restore the uploaded file into the database (its kind's restore), then remove it."""
        name, _, _ = dependency_names(target.dependency_resource_id)
        run = commands(target)
        path = f"{RESTORE_DIR}/{file_name}"
        try:
            exec_id = await self._exec(
                name,
                run.restore(path),
                run.env,
            )
            raw = await self._api.read(
                "POST",
                f"/exec/{exec_id}/start",
                body=json.dumps({"Detach": False, "Tty": False}).encode(),
                headers=_JSON,
                timeout=0,
            )
            info = await self._api.json("GET", f"/exec/{exec_id}/json")
            code = int(info.get("ExitCode") or 0) if isinstance(info, dict) else -1
            if code != 0:
                text = _demux(raw).strip()
                raise EngineError(f"the restore exited with {code}: {text[-1000:]}")
            if target.kind == "redis":
                await self._restart_redis(name, run.env)
        finally:
            await self.remove_file(target, file_name)

    async def _restart_redis(self, name: str, env: dict[str, str]) -> None:
        """Stop and start Redis so that it loads the swapped-in AOF directory, wait until it
        answers, then remove the previous directory."""
        await self._api.read("POST", f"/containers/{quoted(name)}/stop", {"t": "30"}, timeout=60)
        await self._api.read("POST", f"/containers/{quoted(name)}/start")
        deadline = asyncio.get_running_loop().time() + _REDIS_READY_SECONDS
        while True:
            try:
                code, output = await self._run(name, ["sh", "-c", redis_scripts.PING], env)
            except EngineError as exc:  # still starting (or restarting)
                code, output = -1, str(exc)
            if code == 0 and "PONG" in output:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise EngineError(f"Redis did not answer after the restore: {output[-500:]}")
            await asyncio.sleep(0.2)
        await self._run(name, ["sh", "-c", redis_scripts.CLEANUP], env)

    async def remove_file(self, target: BackupTarget, file_name: str) -> None:
        """Remove an uploaded dump (gone, or no container, is fine)."""
        name, _, _ = dependency_names(target.dependency_resource_id)
        with contextlib.suppress(EngineError):
            exec_id = await self._exec(name, ["rm", "-f", f"{RESTORE_DIR}/{file_name}"], {})
            await self._api.read(
                "POST",
                f"/exec/{exec_id}/start",
                body=json.dumps({"Detach": False, "Tty": False}).encode(),
                headers=_JSON,
            )


def _demux(raw: bytes) -> str:
    out = io.BytesIO()
    at = 0
    while at + 8 <= len(raw):
        size = int.from_bytes(raw[at + 4 : at + 8], "big")
        out.write(raw[at + 8 : at + 8 + size])
        at += 8 + size
    return out.getvalue().decode("utf-8", "replace")
