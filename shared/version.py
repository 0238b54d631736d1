"""Protocol and package versions, websocket close codes and process exit codes."""

from typing import Final

PACKAGE_VERSION: Final = "0.1.0"

# The major protocol version is the websocket subprotocol; changes within it are additive only.
PROTOCOL_VERSION: Final = "berth.v1"
SUPPORTED_SUBPROTOCOLS: Final = (PROTOCOL_VERSION,)

AGENT_CONNECT_PATH: Final = "/agent/v1/connect"
AGENT_ENROLL_PATH: Final = "/agent/v1/enroll"

# Both sides refuse frames above this size; the coordinator closes with 1009 (message too big).
MAX_FRAME_BYTES: Final = 1024 * 1024

# Seconds the agent has to answer the challenge before the coordinator drops the socket.
HANDSHAKE_TIMEOUT_SECONDS: Final = 10.0

# Application close codes (4000-4999). Codes marked fatal make the agent exit instead of retrying.
CLOSE_PROTOCOL_ERROR: Final = 4000  # handshake broken; retry
CLOSE_UNAUTHORIZED: Final = 4001  # bad or revoked credentials, inactive server; fatal
CLOSE_REPLACED: Final = 4002  # a newer connection for the same server took over; retry
CLOSE_UNSUPPORTED_PROTOCOL: Final = 4003  # incompatible protocol version; fatal
FATAL_CLOSE_CODES: Final = frozenset({CLOSE_UNAUTHORIZED, CLOSE_UNSUPPORTED_PROTOCOL})

# Process exit codes. systemd units list EXIT_FATAL in RestartPreventExitStatus.
EXIT_OK: Final = 0
EXIT_CRASH: Final = 1
EXIT_FATAL: Final = 78  # EX_CONFIG: credentials refused, protocol incompatible, bad configuration
