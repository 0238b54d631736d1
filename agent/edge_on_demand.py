"""Which form of on-demand TLS's ask setting the Caddy behind the admin API takes, learned live.

Caddy 2.6 knows only ``on_demand.ask``; newer Caddy refuses it and wants the ``http``
permission module (``edge_tls.OnDemandForm``). The agent is not told which Caddy it drives, and
an operator setting would be one more thing to get wrong (and stale after an upgrade of
Caddy), so it learns from Caddy itself: first from what Caddy already holds (a form Caddy
loaded is one it takes), else by writing the older form and, when Caddy's refusal names the
form it does not take, the other. The answer is remembered for later writes, and a refusal of
the remembered form (Caddy replaced under the agent) switches again.
"""

import re
from collections.abc import Callable
from typing import Any, Final

from agent.edge_admin import AdminCall
from agent.edge_tls import ASK, PERMISSION, OnDemandForm
from shared.errors import RuntimeFailed

# What each Caddy says when it refuses a form (Caddy's JSON error text, quotes maybe escaped).
# Caddy 2.6.2: `tls: json: unknown field "permission"` (it decodes config strictly).
# Caddy 2.11.7: `on-demand TLS cannot be enabled without a permission module to prevent abuse`.
_REFUSALS: Final[dict[OnDemandForm, re.Pattern[str]]] = {
    PERMISSION: re.compile(r'unknown field \\?"permission\\?"'),
    ASK: re.compile(r"without a permission module"),
}


def _other(form: OnDemandForm) -> OnDemandForm:
    return ASK if form == PERMISSION else PERMISSION


def refuses(form: OnDemandForm, failure: RuntimeFailed) -> bool:
    """Whether ``failure`` (Caddy's answer to a write) refuses the ``form`` of the ask setting."""
    return _REFUSALS[form].search(str(failure)) is not None


class AskForm:
    """The form one Caddy takes; one per admin API the agent drives."""

    def __init__(self) -> None:
        # The older form first: Debian 12's Caddy (2.6), what installs run today, then loads
        # its config without a refused write; a newer Caddy refuses it once, cheaply.
        self.form: OnDemandForm = ASK

    def holds(self, current: Any, build: Callable[[OnDemandForm], Any]) -> bool:
        """Whether ``current`` (read from Caddy) is ``build`` in either form; Caddy loaded it,
        so that form is the one it takes: remembered, and nothing needs writing."""
        for form in (self.form, _other(self.form)):
            if current == build(form):
                self.form = form
                return True
        return False

    async def write(self, call: AdminCall, path: str, build: Callable[[OnDemandForm], Any]) -> None:
        """POST ``build(form)`` at ``path`` in the remembered form, or in the other one when
        Caddy's refusal names the remembered form; any other refusal is raised as it is."""
        try:
            await call("POST", path, build(self.form))
        except RuntimeFailed as failure:
            if not refuses(self.form, failure):
                raise
            other = _other(self.form)
            await call("POST", path, build(other))
            self.form = other
