"""Run the agent (``python -m agent``, ``berth-agent``) on the lean wire layer.

The agent's process declares the wire models as msgspec structs rather than pydantic models
(``shared.wire_lean``): that must be chosen before anything imports ``shared.wire``, so only
these entry points choose it. Importing ``agent`` as a library (tests, tools) keeps pydantic.
"""

from shared import wire_mode


def main() -> None:
    """Select the lean wire layer, then run the agent's command line."""
    wire_mode.use_lean()
    # Imported only now: every agent module imports shared.wire, which reads the choice once.
    from agent.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
