"""Berth coordinator: state, public HTTP API and the agents' websocket hub."""
