"""Agent enrollment route: trade a one-time join token for registration of the agent's key."""

from coordinator.api.routing import Call, route
from coordinator.api.schemas import EnrollRequest, EnrollResponse
from coordinator.appkeys import REGISTRY_KEY
from coordinator.servers import enrollment
from shared.version import AGENT_ENROLL_PATH, PROTOCOL_VERSION


@route(
    "POST",
    AGENT_ENROLL_PATH,
    summary="Enroll an agent key with a one-time join token",
    tag="agent",
    permission=None,
    body=EnrollRequest,
    response=EnrollResponse,
    status=201,
    errors=(401,),
)
async def enroll(call: Call) -> EnrollResponse:
    """Mark the join token used (exactly once, even under races) and store the public key."""
    body = call.body(EnrollRequest)
    server, fingerprint = await enrollment.enroll(
        call.request.app[REGISTRY_KEY], body.join_token, body.public_key, call.request_id
    )
    return EnrollResponse(
        server_id=server.id,
        server_name=server.name,
        key_fingerprint=fingerprint,
        protocol=PROTOCOL_VERSION,
    )
