"""The ``berth`` operator CLI: a thin client of the coordinator's HTTP API."""
