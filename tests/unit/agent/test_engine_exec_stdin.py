"""``EngineClient.exec_stdin`` against the fake engine: stdin streamed over the taken-over
connection, its end, the exit code and output tail, backpressure, early exits and cancel."""

import json
import threading
from typing import Any

import pytest

from agent.runtime import EngineError
from agent.runtime.engine import EngineClient
from agent.runtime.exec_stdin import OUTPUT_KEEP, ExecStdin
from tests.unit.agent.fake_engine import FakeEngine, Hijack, Seen, frame

EXEC = "e" * 64
START = ("POST", f"/exec/{EXEC}/start")


@pytest.fixture
async def api(engine: FakeEngine) -> EngineClient:
    engine.routes[("POST", "/containers/db-1/exec")] = (201, {"Id": EXEC})
    return EngineClient(str(engine.server_address))


class Command:
    """The fake command: reads its stdin (all, or ``stop_after`` bytes), then writes ``out``
    and ``err`` frames and exits with ``code``."""

    def __init__(self, code: int = 0, out: bytes = b"", err: bytes = b"") -> None:
        self.code = code
        self.out = out
        self.err = err
        self.stop_after: int | None = None
        self.read_nothing = threading.Event()
        self.received = bytearray()
        self.ended = threading.Event()
        self.saw_eof = False

    def serve(self, seen: Seen, rfile: Any, wfile: Any) -> None:
        if self.read_nothing.is_set():
            self.ended.wait(30)
        else:
            while self.stop_after is None or len(self.received) < self.stop_after:
                chunk = rfile.read1(65536)
                if not chunk:
                    self.saw_eof = True
                    break
                self.received += chunk
        if self.out:
            wfile.write(frame(1, self.out))
        if self.err:
            wfile.write(frame(2, self.err))
        self.ended.set()

    def inspect(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        return 200, {"Running": not self.ended.is_set(), "ExitCode": self.code}


def install(engine: FakeEngine, command: Command) -> None:
    engine.routes[START] = Hijack(command.serve)
    engine.routes[("GET", f"/exec/{EXEC}/json")] = command.inspect


async def _write_many(running: ExecStdin, chunk: bytes, timeout: float) -> None:
    # 200 chunks: more than the socket buffers hold, and time for a closed connection to show.
    for _ in range(200):
        await running.write(chunk, timeout=timeout)


async def test_stdin_arrives_whole_and_in_order_then_the_exit_code(
    engine: FakeEngine, api: EngineClient
) -> None:
    command = Command(out=b"restored\n")
    install(engine, command)
    sent = b"".join(bytes([n % 251]) * 70_000 for n in range(40))  # ~2.7 MiB, many writes
    running = await api.exec_stdin("db-1", ["pg_restore", "-d", "app"], {"PGPASSWORD": "pw"})
    for at in range(0, len(sent), 384 * 1024):
        await running.write(sent[at : at + 384 * 1024], timeout=10)
    assert await running.finish(timeout=10) == 0
    assert bytes(command.received) == sent
    assert command.saw_eof
    assert running.output == "restored"
    [created] = engine.requests_to("POST", "/containers/db-1/exec")
    body = json.loads(created.body)
    assert body["Cmd"] == ["pg_restore", "-d", "app"]
    assert body["Env"] == ["PGPASSWORD=pw"]
    assert body["AttachStdin"] is True
    [start] = engine.requests_to(*START)
    assert start.headers["upgrade"] == "tcp"
    assert json.loads(start.body) == {"Detach": False, "Tty": False}


async def test_a_failing_command_gives_its_exit_code_and_a_bounded_output_tail(
    engine: FakeEngine, api: EngineClient
) -> None:
    command = Command(code=1, err=b"x" * 10_000 + b"pg_restore: error: relation exists")
    install(engine, command)
    running = await api.exec_stdin("db-1", ["pg_restore"], {})
    await running.write(b"PGDMP", timeout=10)
    assert await running.finish(timeout=10) == 1
    assert running.output.endswith("pg_restore: error: relation exists")
    assert len(running.output) <= OUTPUT_KEEP


async def test_a_command_that_ends_before_its_input_fails_the_write_with_its_reason(
    engine: FakeEngine, api: EngineClient
) -> None:
    command = Command(code=3, err=b"ERROR 1064: syntax error")
    command.stop_after = 1
    install(engine, command)
    running = await api.exec_stdin("db-1", ["mariadb"], {})
    with pytest.raises(EngineError, match=r"ended before its input did \(3\): ERROR 1064"):
        await _write_many(running, b"y" * 65536, timeout=10)
    await running.cancel()


async def test_a_command_that_reads_nothing_times_the_write_out(
    engine: FakeEngine, api: EngineClient
) -> None:
    command = Command()
    command.read_nothing.set()
    install(engine, command)
    running = await api.exec_stdin("db-1", ["sleep", "60"], {})
    with pytest.raises(EngineError, match="read no input"):
        await _write_many(running, b"z" * 384 * 1024, timeout=0.5)
    command.ended.set()
    await running.cancel()


async def test_cancel_ends_the_input_mid_stream_and_waits_for_the_command(
    engine: FakeEngine, api: EngineClient
) -> None:
    command = Command(code=1)
    install(engine, command)
    running = await api.exec_stdin("db-1", ["pg_restore"], {})
    await running.write(b"half of a dump", timeout=10)
    await running.cancel()
    assert command.ended.is_set()
    assert command.saw_eof
    assert bytes(command.received) == b"half of a dump"


async def test_an_engine_refusal_of_the_start_is_an_engine_error(
    engine: FakeEngine, api: EngineClient
) -> None:
    engine.routes[START] = (409, {"message": "container db-1 is not running"})
    with pytest.raises(EngineError, match="is not running") as caught:
        await api.exec_stdin("db-1", ["pg_restore"], {})
    assert caught.value.status == 409
