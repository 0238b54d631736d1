"""The ``*_TYPES`` sets are derived from the message unions, so they name exactly their members."""

from typing import Any, get_args

from pydantic import BaseModel

from shared.messages import (
    AGENT_MESSAGE_TYPES,
    COORDINATOR_MESSAGE_TYPES,
    DEPLOY_AGENT_TYPES,
    DEPLOY_COORDINATOR_TYPES,
    AgentMessage,
    CoordinatorMessage,
    DeploymentsAgentMessage,
    Heartbeat,
    decode_agent_message,
)
from shared.messages.logs import LOGS_AGENT_TYPES, LOGS_COORDINATOR_TYPES
from shared.messages.monitoring import MONITORING_AGENT_TYPES, MONITORING_COORDINATOR_TYPES
from shared.messages.terminal import TERMINAL_AGENT_TYPES, TERMINAL_COORDINATOR_TYPES
from shared.messages.typeset import message_types, unsolicited_types


def _members(union: Any) -> list[type[BaseModel]]:
    return list(get_args(get_args(union)[0]))


def test_the_sets_name_every_member_of_their_union_and_nothing_else() -> None:
    agent = {m.model_fields["type"].default for m in _members(AgentMessage)}
    coordinator = {m.model_fields["type"].default for m in _members(CoordinatorMessage)}
    assert agent == AGENT_MESSAGE_TYPES
    assert coordinator == COORDINATOR_MESSAGE_TYPES
    # Every type names one model: a duplicate would make the discriminator ambiguous.
    assert len(agent) == len(_members(AgentMessage))
    assert len(coordinator) == len(_members(CoordinatorMessage))


def test_each_capability_set_is_part_of_its_direction() -> None:
    agent_parts = (
        DEPLOY_AGENT_TYPES,
        LOGS_AGENT_TYPES,
        MONITORING_AGENT_TYPES,
        TERMINAL_AGENT_TYPES,
    )
    for part in agent_parts:
        assert part <= AGENT_MESSAGE_TYPES
    coordinator_parts = (
        DEPLOY_COORDINATOR_TYPES,
        LOGS_COORDINATOR_TYPES,
        MONITORING_COORDINATOR_TYPES,
        TERMINAL_COORDINATOR_TYPES,
    )
    for part in coordinator_parts:
        assert part <= COORDINATOR_MESSAGE_TYPES
    # No two capabilities claim the same frame type (one consumer per type).
    assert sum(len(p) for p in coordinator_parts) == len(frozenset().union(*coordinator_parts))


def test_message_types_flattens_annotated_and_nested_unions() -> None:
    assert message_types(Heartbeat) == {"heartbeat"}
    assert "deploy_result" in message_types(AgentMessage)
    assert "log_chunk" in message_types(AgentMessage)


def test_the_decoder_knows_every_derived_type() -> None:
    # A type outside the set is refused before validation; inside it the model decides.
    assert decode_agent_message(b'{"type":"heartbeat","id":1}').type == "heartbeat"


def test_unsolicited_types_are_the_frames_without_re() -> None:
    assert unsolicited_types(DeploymentsAgentMessage) == {
        "deploy_progress",
        "deploy_result",
        "inventory",
    }
    assert unsolicited_types(AgentMessage) >= {"hello", "heartbeat", "samples", "log_chunk"}
    assert not unsolicited_types(AgentMessage) & {"deploy_accepted", "log_opened", "error"}
