"""The agent's lean wire layer reads, writes and refuses every wire model as pydantic does.

The agent's process declares ``shared.messages`` as msgspec structs (``shared.wire_lean``);
everything else uses pydantic. Each check runs the lean side in its own interpreter (a process
has one wire layer) and compares it with pydantic's answer here: the same fields, wire names
and defaults; drawn valid values of every model read back equal after a trip through the lean
side; and values around every declared bound, length or pattern get the same verdict.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from pydantic import BaseModel, ValidationError

from shared.errors import PlatformError
from shared.messages import DeployPlan, decode_coordinator_message
from shared.wire import dump_json
from tests.unit.shared.wire_samples import constraints, models, wire_models

ROOT = Path(__file__).resolve().parents[3]

# Reads requests (one JSON object per line) and answers each, on the lean wire layer.
_LEAN_SIDE = """
import importlib, json, sys
from shared import wire_mode
wire_mode.use_lean()
import msgspec
from shared.wire import dump_json

def model(path):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)

for line in sys.stdin:
    ask = json.loads(line)
    cls = model(ask["model"])
    if ask["op"] == "frame":
        from shared.errors import PlatformError
        from shared.messages import decode_coordinator_message
        try:
            message = decode_coordinator_message(ask["json"])
            print(json.dumps({"ok": True, "json": dump_json(message)}))
        except PlatformError as exc:
            print(json.dumps({"ok": False, "code": exc.code, "details": exc.details}))
        continue
    if ask["op"] == "fields":
        info = msgspec.inspect.type_info(cls)
        print(json.dumps(sorted(
            [f.name, f.encode_name, f.required, None if f.required else repr(
                f.default if f.default is not msgspec.NODEFAULT else f.default_factory())]
            for f in info.fields)))
        continue
    try:
        print(json.dumps({"ok": True, "json": dump_json(cls.model_validate_json(ask["json"]))}))
    except msgspec.ValidationError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
"""

MODELS = wire_models()


def _lean(requests: list[dict[str, Any]]) -> list[Any]:
    done = subprocess.run(
        [sys.executable, "-c", _LEAN_SIDE],
        input="".join(json.dumps(r) + "\n" for r in requests),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _samples(model: type[BaseModel], count: int) -> list[BaseModel]:
    drawn: list[BaseModel] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None)
    @given(models(model))
    def draw(sample: BaseModel) -> None:
        drawn.append(sample)

    draw()
    return drawn


def _pydantic_fields(model: type[BaseModel]) -> list[list[Any]]:
    rows = []
    for name, field in model.model_fields.items():
        required = field.is_required()
        default = None if required else repr(field.get_default(call_default_factory=True))
        rows.append([name, field.alias, required, default])
    return sorted(rows)


def test_the_lean_models_have_pydantics_fields_wire_names_and_defaults() -> None:
    paths = sorted(MODELS)
    answers = _lean([{"op": "fields", "model": p} for p in paths])
    assert len(paths) > 100
    for path, lean_fields in zip(paths, answers, strict=True):
        assert lean_fields == _pydantic_fields(MODELS[path]), path


def test_every_model_reads_back_equal_after_a_trip_through_the_lean_side() -> None:
    requests, originals = [], []
    for path, model in sorted(MODELS.items()):
        for sample in _samples(model, 8):
            requests.append({"op": "trip", "model": path, "json": sample.model_dump_json()})
            originals.append((path, sample))
    for (path, sample), answer in zip(originals, _lean(requests), strict=True):
        assert answer["ok"], (path, sample, answer)
        assert MODELS[path].model_validate_json(answer["json"]) == sample, path


def _pydantic_frame(frame: str) -> dict[str, Any]:
    try:
        message = decode_coordinator_message(frame)
    except PlatformError as exc:
        return {"ok": False, "code": exc.code, "details": exc.details}
    return {"ok": True, "json": dump_json(message)}


def test_the_agents_frame_decoder_accepts_and_refuses_as_pydantics() -> None:
    plan = _samples(DeployPlan, 1)[0].model_copy(update={"id": 7})
    good = dump_json(plan)
    frames = [
        good,
        good.replace('"type":"deploy_plan"', '"type":"no_such_type"'),  # unknown type
        json.dumps({**json.loads(good), "deploymentId": None}),  # a required field is null
        json.dumps({**json.loads(good), "artifact": {"kind": "tarball"}}),  # unknown union member
        json.dumps({**json.loads(good), "artifact": {"kind": "image", "image": ""}}),  # too short
        json.dumps({**json.loads(good), "id": "7"}),  # a string where the id is an integer
        json.dumps({k: v for k, v in json.loads(good).items() if k != "id"}),  # no id
        "[1, 2]",  # not an object
        "{",  # not JSON
    ]
    answers = _lean(
        [{"op": "frame", "model": "shared.messages:DeployPlan", "json": f} for f in frames]
    )
    for frame, answer in zip(frames, answers, strict=True):
        expected = _pydantic_frame(frame)
        assert answer["ok"] == expected["ok"], frame
        if expected["ok"]:
            assert decode_coordinator_message(answer["json"]) == decode_coordinator_message(frame)
        else:
            assert answer["code"] == expected["code"], frame
            assert answer["details"].get("re") == expected["details"].get("re"), frame
            # msgspec reports the first problem; it names the same field or, inside a union
            # member, the union's field.
            lean = [p["loc"] for p in answer["details"].get("problems", [])]
            pydantic = [p["loc"] for p in expected["details"].get("problems", [])]
            assert len(lean) == min(len(pydantic), 1), frame
            assert all(p.startswith(loc) for loc, p in zip(lean, pydantic, strict=False)), frame


def _breaking(bounds: dict[str, Any], value: Any) -> list[Any]:
    """Values just outside each of ``bounds`` (of the same JSON type as ``value``)."""
    broken: list[Any] = []
    if isinstance(value, bool):
        return broken
    if isinstance(value, int | float):
        for key, step in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
            if key in bounds:
                broken.append(bounds[key] + step)
    if isinstance(value, str | list):
        filler: Any = "x" if isinstance(value, str) else (value[:1] or [None])
        if "max_length" in bounds:
            broken.append(filler * (bounds["max_length"] + 1))
        if bounds.get("min_length", 0) > 0:
            broken.append(filler * 0)
    if isinstance(value, str) and "pattern" in bounds:
        # A trailing newline: Python's ``$`` would accept it before the end, pydantic's not.
        broken.extend([value + "\x00!", value + "\n"])
    return broken


def test_values_at_and_outside_each_declared_bound_get_the_same_verdict_from_both() -> None:
    requests, cases = [], []
    for path, model in sorted(MODELS.items()):
        [sample] = _samples(model, 1)
        wire = sample.model_dump(mode="json", by_alias=True)
        for name, field in model.model_fields.items():
            key = field.alias or name
            if key not in wire or wire[key] is None:
                continue
            for candidate in _breaking(constraints(field.metadata), wire[key]):
                frame = json.dumps({**wire, key: candidate})
                try:
                    model.model_validate_json(frame)
                    accepted = True
                except ValidationError:
                    accepted = False
                requests.append({"op": "trip", "model": path, "json": frame})
                cases.append((path, key, candidate, accepted))
    assert sum(not accepted for *_, accepted in cases) > 200
    for (*case, accepted), answer in zip(cases, _lean(requests), strict=True):
        assert answer["ok"] == accepted, (case, answer)
