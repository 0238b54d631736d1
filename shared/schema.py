"""Generate the JSON Schema of both message unions (``python -m shared.schema`` prints it)."""

import json
from typing import Any

from pydantic import TypeAdapter

from shared.messages import AgentMessage, CoordinatorMessage
from shared.version import PROTOCOL_VERSION


def protocol_schema() -> dict[str, Any]:
    """Return one document holding the agent→coordinator and coordinator→agent unions."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Berth agent protocol {PROTOCOL_VERSION}",
        "agentMessage": TypeAdapter(AgentMessage).json_schema(by_alias=True),
        "coordinatorMessage": TypeAdapter(CoordinatorMessage).json_schema(by_alias=True),
    }


def render() -> str:
    """Return the schema as stable, pretty JSON text (what docs/ holds)."""
    return json.dumps(protocol_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
