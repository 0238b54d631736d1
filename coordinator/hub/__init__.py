"""The agents' websocket hub: endpoint (handshake), sessions (one per agent), registry."""
