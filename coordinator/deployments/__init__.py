"""Deployments: planning, durable state, the engine that drives agents, and event streaming."""
