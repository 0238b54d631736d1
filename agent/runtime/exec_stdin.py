"""A command running in a container with its stdin attached (``docker exec -i``), fed as bytes
arrive: the way a restore streams a dump into ``pg_restore``/``mariadb`` without a copy.

The engine hands over the connection (``Upgrade: tcp``): what the agent writes is the
command's stdin; what it reads is the command's multiplexed stdout/stderr, of which only a
bounded tail is kept (the reason of a failure). Writing waits for the socket to drain, so a
slow command slows its sender (backpressure) instead of buffering in the agent.
"""

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

from agent.runtime import EngineError

if TYPE_CHECKING:
    from agent.runtime.engine import EngineClient

# The command's output kept for a failure's reason (its last bytes).
OUTPUT_KEEP: Final = 4096
_READ_BYTES: Final = 64 * 1024
# How long a cancelled command may take to stop after its stdin closed.
_STOP_SECONDS: Final = 30.0
_POLL_SECONDS: Final = 0.05


class ExecStdin:
    """One started exec with stdin attached: ``write``, then ``finish`` or ``cancel``."""

    def __init__(
        self,
        api: "EngineClient",
        exec_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._api = api
        self.exec_id = exec_id
        self._reader = reader
        self._writer = writer
        self._output = bytearray()
        self._pump = asyncio.get_running_loop().create_task(self._read())

    @property
    def output(self) -> str:
        """The tail of the command's stdout and stderr so far."""
        return self._output.decode("utf-8", "replace").strip()

    async def _read(self) -> None:
        # Frames of an 8-byte header (stream, size) and their data, until the command ends
        # (the engine may reset a connection whose input the command left unread).
        with contextlib.suppress(ConnectionError):
            await self._frames()

    async def _frames(self) -> None:
        while True:
            try:
                header = await self._reader.readexactly(8)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise EngineError("the command's output ended mid-frame") from exc
                return
            left = int.from_bytes(header[4:8], "big")
            while left:
                data = await self._reader.read(min(left, _READ_BYTES))
                if not data:
                    raise EngineError("the command's output ended mid-frame")
                left -= len(data)
                self._output += data
                del self._output[:-OUTPUT_KEEP]

    async def write(self, data: bytes, timeout: float) -> None:
        """Send ``data`` to the command's stdin; wait (at most ``timeout`` seconds) until the
        socket took it. Raises ``EngineError`` when the command ended or did not read."""
        if self._pump.done():
            raise await self._ended_early()
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), timeout)
        except TimeoutError as exc:
            raise EngineError(f"the command read no input for {timeout:.0f} s") from exc
        except (ConnectionError, OSError) as exc:
            raise await self._ended_early() from exc

    async def _ended_early(self) -> EngineError:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._pump), _STOP_SECONDS)
        code = await self._exit_code(_STOP_SECONDS)
        return EngineError(f"the command ended before its input did ({code}): {self.output}")

    async def finish(self, timeout: float | None) -> int:
        """Close stdin, wait (``timeout`` seconds; None: no limit) for the command to end,
        and return its exit code (the output tail is in ``output``)."""
        try:
            if self._writer.can_write_eof():
                self._writer.write_eof()
            await asyncio.wait_for(asyncio.shield(self._pump), timeout)
        except TimeoutError as exc:
            await self.cancel()
            raise EngineError(f"the command did not end within {timeout:.0f} s") from exc
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            raise EngineError(f"the command's connection broke off: {exc!r}") from exc
        finally:
            self._writer.close()
        return await self._exit_code(_STOP_SECONDS)

    async def _exit_code(self, wait: float) -> int:
        # The engine may report the exec running for a moment after its streams closed.
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            info = await self._api.json("GET", f"/exec/{self.exec_id}/json")
            if not isinstance(info, dict):
                return -1
            if not info.get("Running") or asyncio.get_running_loop().time() > deadline:
                code = info.get("ExitCode")
                return int(code) if isinstance(code, int) else -1
            await asyncio.sleep(_POLL_SECONDS)

    async def cancel(self) -> None:
        """Close the connection (the command's stdin ends mid-input, so it fails) and wait a
        bounded time for the command to stop; never raises."""
        # Aborted, not closed: a close would first wait for a command that reads nothing to
        # take what is still buffered.
        self._writer.transport.abort()
        self._pump.cancel()
        with contextlib.suppress(BaseException):
            await self._pump
        with contextlib.suppress(EngineError):
            await self._exit_code(_STOP_SECONDS)
