"""A relaying terminal client (as ``docker exec -it`` is) on the agent's pty: keys typed before
it took the terminal are not echoed by the pty, and a size set while it started still reaches
it. The client is a small script with docker's start-up order; the pty and process are real."""

import asyncio
import sys

from agent.terminal.pty_host import PtyProcess

# Like the docker CLI: reads the size once, switches to raw mode, and only a moment later
# starts forwarding window changes (SIGWINCH); a change in between used to be lost.
CLIENT = r"""
import fcntl, signal, struct, sys, termios, time, tty
def size():
    rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, bytes(8)))[:2]
    return f"{rows}x{cols}"
known = size()
time.sleep(0.3)  # the client's own delays are the race under test
tty.setraw(0)
sys.stdout.write("started\r\n"); sys.stdout.flush()
time.sleep(0.5)  # a change in this window used to be lost
def changed(*_):
    global known
    known = size()
signal.signal(signal.SIGWINCH, changed)
while True:
    key = sys.stdin.buffer.read(1)
    if not key or key == b"q":
        break
    sys.stdout.write(f"[{key.decode()}:{known}]\r\n"); sys.stdout.flush()
"""


async def _spawn() -> PtyProcess:
    return await PtyProcess.spawn(
        [sys.executable, "-c", CLIENT], rows=24, cols=80, credit=1 << 20, relay=True
    )


async def _read_until(pty: PtyProcess, needle: bytes, out: bytearray) -> None:
    async with asyncio.timeout(10):
        while needle not in out:
            chunk = await pty.read()
            assert chunk, f"ended before {needle!r}: {bytes(out)!r}"
            out.extend(chunk)


async def test_typed_ahead_keys_wait_for_raw_mode_and_are_not_echoed() -> None:
    pty = await _spawn()
    try:
        pty.write(b"ab")  # before the client switched to raw mode
        out = bytearray()
        await _read_until(pty, b"[b:", out)
        # Only the client's answers: the pty itself echoed nothing.
        assert bytes(out).startswith(b"started\r\n[a:"), bytes(out)
        pty.write(b"q")
        assert await pty.process.wait() == 0
    finally:
        await pty.hang_up(grace=0.5)


async def test_a_size_set_while_the_client_starts_reaches_it() -> None:
    pty = await _spawn()
    try:
        out = bytearray()
        await _read_until(pty, b"started", out)
        pty.resize(37, 111)  # the client has read the size but does not watch SIGWINCH yet
        async with asyncio.timeout(10):
            while True:
                out.clear()
                pty.write(b"?")
                await _read_until(pty, b"]", out)
                if b":37x111]" in out:
                    break
                assert b":24x80]" in out, bytes(out)
                await asyncio.sleep(0.05)  # poll again; bounded by the timeout above
        pty.write(b"q")
        assert await pty.process.wait() == 0
    finally:
        await pty.hang_up(grace=0.5)
