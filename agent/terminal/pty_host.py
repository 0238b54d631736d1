"""One process on a local pseudo-terminal: non-blocking reads under a byte credit, bounded
non-blocking writes, window size, hang-up and reaping."""

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import pty
import signal
import struct
import termios
from collections import deque
from collections.abc import Sequence
from typing import Final

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES: Final = 32 * 1024
# Input waiting for the pty to accept it; past this the client is typing (pasting) into a
# process that does not read, and further input is dropped rather than buffered without end.
MAX_PENDING_INPUT_BYTES: Final = 256 * 1024
HANGUP_GRACE_SECONDS: Final = 2.0
# A client of another terminal (``docker exec -it``) switches this pty to raw mode once it
# runs; until then the pty is in cooked echo mode and would echo (and buffer) typed keys.
TAKEOVER_POLL_SECONDS: Final = 0.01
TAKEOVER_DEADLINE_SECONDS: Final = 10.0
# After the takeover the client starts forwarding window changes (SIGWINCH) a moment later;
# a size set in between is re-announced at these offsets (a repeat of the same size is a
# no-op on the far side).
REANNOUNCE_AFTER_SECONDS: Final = (0.0, 0.1, 0.3, 1.0, 3.0)


def _make_controlling_tty() -> None:
    # Runs in the child after setsid (start_new_session): the pty becomes its controlling
    # terminal, so Ctrl-C reaches the foreground job and TIOCSWINSZ raises SIGWINCH there.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_window_size(fd: int, rows: int, cols: int) -> None:
    """Set a terminal's size (the kernel tells the foreground job with SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyProcess:
    """A child process whose stdin/stdout/stderr are the slave side of a fresh pty.

    Output is read only while ``credit`` allows it: with no credit the reader is removed from
    the loop, so a flooding process blocks in the kernel (the pty buffer fills) instead of
    growing this process's memory.
    """

    def __init__(
        self,
        master: int,
        process: asyncio.subprocess.Process,
        credit: int,
        *,
        relay: bool = False,
    ) -> None:
        self._master = master
        self.process = process
        self._loop = asyncio.get_running_loop()
        self._credit = credit
        self._chunks: deque[bytes] = deque()
        self._output_ready = asyncio.Event()
        self._eof = False
        self._reading = False
        self._input: deque[bytes] = deque()
        self._input_bytes = 0
        self._writing = False
        self._closed = False
        self._resized = False
        self._taken = not relay
        self._takeover: asyncio.Task[None] | None = None
        if relay:
            self._takeover = self._loop.create_task(self._await_takeover())
        self._update_reader()

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        rows: int,
        cols: int,
        credit: int,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        relay: bool = False,
    ) -> "PtyProcess":
        """Start ``argv`` on a new pty of ``rows`` x ``cols``; raise ``OSError`` on failure.

        ``relay``: the process is a client of another terminal (``docker exec -it``), which
        echoes and edits lines itself. Input then waits until the client has put this pty in
        raw mode (echoed here too, typed-ahead keys would show twice), and window sizes set
        while it starts are re-announced once it forwards them.
        """
        master, slave = pty.openpty()
        try:
            set_window_size(slave, rows, cols)
            os.set_blocking(master, False)
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                # One ioctl in the child; it takes no lock, so the fork-with-threads caveat of
                # preexec_fn does not bite here.
                preexec_fn=_make_controlling_tty,
                env=env,
                cwd=cwd,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            # The child holds its own copies; keeping ours would hide the child's exit (no EIO).
            os.close(slave)
        return cls(master, process, credit, relay=relay)

    # ---- output ----------------------------------------------------------------------------

    def grant(self, credit: int) -> None:
        """Allow ``credit`` more output bytes to be read."""
        self._credit += credit
        self._update_reader()

    @property
    def credit(self) -> int:
        """Output bytes that may still be read before more credit arrives."""
        return self._credit

    @property
    def eof(self) -> bool:
        """Whether the pty has no more output (every holder of the slave side is gone)."""
        return self._eof

    def _update_reader(self) -> None:
        want = not self._closed and not self._eof and self._credit > 0
        if want and not self._reading:
            self._loop.add_reader(self._master, self._on_readable)
        elif not want and self._reading:
            self._loop.remove_reader(self._master)
        self._reading = want

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, min(READ_CHUNK_BYTES, self._credit))
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO: the slave side was closed by every process holding it (the child exited).
            if exc.errno not in (errno.EIO, errno.EBADF):
                logger.warning("terminal read failed: %s", exc)
            data = b""
        if not data:
            self._eof = True
        else:
            self._credit -= len(data)
            self._chunks.append(data)
        self._output_ready.set()
        self._update_reader()

    async def read(self) -> bytes:
        """Return the next output chunk, or ``b""`` at end of output."""
        while not self._chunks:
            if self._eof or self._closed:
                return b""
            self._output_ready.clear()
            await self._output_ready.wait()
        return self._chunks.popleft()

    async def read_until(self, deadline: float) -> bytes | None:
        """Like ``read`` but give up (``None``) at the loop time ``deadline``."""
        try:
            async with asyncio.timeout_at(deadline):
                return await self.read()
        except TimeoutError:
            return None

    # ---- input -----------------------------------------------------------------------------

    def write(self, data: bytes) -> bool:
        """Queue ``data`` for the pty without blocking; False when it was dropped (backlog)."""
        if self._closed or not data:
            return not self._closed
        if self._input_bytes + len(data) > MAX_PENDING_INPUT_BYTES:
            return False
        self._input.append(data)
        self._input_bytes += len(data)
        if self._taken:
            self._flush_input()
        return True

    def _flush_input(self) -> None:
        while self._input and not self._closed and self._taken:
            head = self._input[0]
            try:
                written = os.write(self._master, head)
            except BlockingIOError:
                break
            except OSError:
                self._input.clear()
                self._input_bytes = 0
                break
            self._input_bytes -= written
            if written < len(head):
                self._input[0] = head[written:]
            else:
                self._input.popleft()
        want = bool(self._input) and not self._closed
        if want and not self._writing:
            self._loop.add_writer(self._master, self._flush_input)
        elif not want and self._writing:
            self._loop.remove_writer(self._master)
        self._writing = want

    def resize(self, rows: int, cols: int) -> None:
        """Change the window size (the foreground job gets SIGWINCH)."""
        if not self._closed:
            set_window_size(self._master, rows, cols)
            self._resized = True

    # ---- a relaying client's start -----------------------------------------------------------

    def _raw(self) -> bool:
        try:
            local_modes = termios.tcgetattr(self._master)[3]
        except termios.error:
            return True  # the pty is gone: nothing left to wait for
        return not local_modes & (termios.ECHO | termios.ICANON)

    async def _await_takeover(self) -> None:
        """Hold input until the client switched the pty to raw mode, then re-announce sizes."""
        deadline = self._loop.time() + TAKEOVER_DEADLINE_SECONDS
        while not self._raw() and self.process.returncode is None:
            if self._loop.time() >= deadline:
                logger.warning("the terminal client never switched to raw mode; input flows")
                break
            await asyncio.sleep(TAKEOVER_POLL_SECONDS)
        self._taken = True
        self._flush_input()
        started = self._loop.time()
        for offset in REANNOUNCE_AFTER_SECONDS:
            await asyncio.sleep(max(started + offset - self._loop.time(), 0))
            if self._resized:
                # The same size again: SIGWINCH makes the client read and forward it; one that
                # arrived before the client listened for SIGWINCH was ignored.
                self._signal(signal.SIGWINCH)

    # ---- end -------------------------------------------------------------------------------

    def _signal(self, signum: int) -> None:
        if self.process.returncode is not None:
            return
        # The child leads its own session (and process group): signal the whole group so a
        # job started from the shell goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def hang_up(self, grace: float = HANGUP_GRACE_SECONDS) -> int:
        """SIGHUP, then SIGKILL after ``grace``; reap and release the pty. Returns the exit code."""
        self._signal(signal.SIGHUP)
        try:
            async with asyncio.timeout(grace):
                await self.process.wait()
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self.process.wait()
        self.close()
        return self.exit_code()

    def exit_code(self) -> int:
        """The exit code, with death by signal N reported as 128 + N (as shells do)."""
        code = self.process.returncode
        if code is None:
            return -1
        return 128 - code if code < 0 else code

    def close(self) -> None:
        """Release the master side (idempotent); the process must already be reaped."""
        if self._closed:
            return
        self._closed = True
        if self._takeover is not None:
            self._takeover.cancel()
        self._update_reader()
        if self._writing:
            self._loop.remove_writer(self._master)
            self._writing = False
        self._input.clear()
        self._output_ready.set()
        os.close(self._master)
