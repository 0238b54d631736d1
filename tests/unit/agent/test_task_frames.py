"""Task-run output is cut into frames that stay far inside the 1 MiB frame limit."""

from datetime import UTC, datetime

from agent.tasks.feature import frames
from shared.messages.tasks import TaskRunLine, TaskRunOutput
from shared.version import MAX_FRAME_BYTES
from shared.wire import dump_json

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _lines(count: int, width: int, text: str = "x") -> list[TaskRunLine]:
    return [
        TaskRunLine(sequence=i + 1, timestamp=AT, stream="stdout", message=text * width)
        for i in range(count)
    ]


def test_many_short_lines_go_500_to_a_frame_in_order() -> None:
    lines = _lines(1201, 10)
    cut = frames(lines)
    assert [len(part) for part in cut] == [500, 500, 201]
    assert [line for part in cut for line in part] == lines


def test_long_lines_are_cut_by_size_and_every_frame_fits_even_when_escaped() -> None:
    # Control characters are escaped six bytes each in JSON: the worst case.
    lines = _lines(400, 16_384, "\x01")
    cut = frames(lines)
    assert len(cut) > 1
    for part in cut:
        frame = dump_json(TaskRunOutput(id=1, run_id="tkr_1", lines=part))
        assert len(frame) < MAX_FRAME_BYTES
    assert sum(len(part) for part in cut) == 400
    assert frames([]) == []
