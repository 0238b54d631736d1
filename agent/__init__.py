"""Berth agent: dials out to the coordinator, proves its identity, and serves its requests."""
