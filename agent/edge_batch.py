"""One edge change's admin writes sent as one: Caddy loads its whole config on every write.

A change (a binding added, moved between the host maps and routes of its own, a redeploy, a
resource removed) is worked out as the admin calls that would make it one by one, by id, as
before. ``AdminBatch`` records them instead of sending them. At ``flush`` a single call is sent
as it is; several are applied, in order and with the admin API's meaning, to the servers as
Caddy holds them (read just before, under the agent's queue of admin requests: nothing of the
agent's comes between) and written back in one ``PATCH``: one config load instead of one per
call, and no request ever sees the change half made.

The admin API's meaning, on ``apps.http.servers``: a path is ``/config/apps/http/servers/...``
or ``/id/ID/...`` (the object whose ``@id`` is ID, wherever it is). ``POST`` appends to an array
(``.../...`` appends each element of the body) or sets a key; ``PUT`` inserts into an array at
an index (an id resolves to its element's index) or creates a key; ``PATCH`` replaces what
exists; ``DELETE`` removes it. A path that does not resolve is Caddy's 404: with ``missing_ok``
the call is skipped, otherwise nothing is written and ``RuntimeFailed`` says which.
"""

from dataclasses import dataclass
from typing import Any, Final

from agent.edge_admin import AdminCall, AdminEdit
from agent.edge_setup import SERVERS_PATH
from shared.errors import RuntimeFailed

_BY_ID: Final = "/id/"
_EACH: Final = "..."


@dataclass(frozen=True)
class Write:
    """One admin write as the edge would send it."""

    method: str
    path: str
    body: Any
    missing_ok: bool


class _Missing(Exception):
    """A path that does not resolve in the servers."""


class AdminBatch:
    """Records an edge change's admin writes (an ``AdminCall``) and sends them at ``flush``."""

    def __init__(self, send: AdminCall, edit: AdminEdit) -> None:
        self._send = send
        self._edit = edit
        self._writes: list[Write] = []

    async def call(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        """Record a write (answers None); a read first sends what is recorded, then reads."""
        if method == "GET":
            await self.flush()
            return await self._send(method, path, body, missing_ok=missing_ok)
        self._writes.append(Write(method, path, body, missing_ok))
        return None

    async def flush(self) -> None:
        """Send what is recorded: one call as it is, several as one write of the servers."""
        writes, self._writes = self._writes, []
        if len(writes) > 1 and all(_in_servers(w.path) for w in writes):
            await self._edit(SERVERS_PATH, lambda servers: applied(servers, writes))
            return
        for write in writes:
            await self._send(write.method, write.path, write.body, missing_ok=write.missing_ok)


def _in_servers(path: str) -> bool:
    return path.startswith((_BY_ID, f"{SERVERS_PATH}/"))


def applied(servers: Any, writes: list[Write]) -> dict[str, Any]:
    """``servers`` (as read from Caddy, changed in place) with ``writes`` applied in order."""
    if not isinstance(servers, dict):
        raise RuntimeFailed("Caddy holds no HTTP servers")
    index: dict[str, tuple[Any, dict[str, Any]]] = {}
    _remember(servers, None, index)
    borrowed: set[int] = set()
    for write in writes:
        try:
            _apply(servers, index, write, borrowed)
        except _Missing:
            if not write.missing_ok:
                raise RuntimeFailed(
                    f"edge proxy refused {write.method} {write.path}: not in its config"
                ) from None
    return servers


def _apply(
    servers: dict[str, Any], index: dict[str, Any], write: Write, borrowed: set[int]
) -> None:
    parent, key = _locate(servers, index, write.path)
    target = _get(parent, key, None) if write.method == "POST" and key != _EACH else None
    if id(parent) in borrowed or (isinstance(target, list) and id(target) in borrowed):
        # The bodies are applied as they are, not copied (a map route is 1,000 entries), and
        # they are the caller's own objects (the agent's copy of what Caddy holds): a later
        # write may replace them but not change them from inside.
        raise RuntimeFailed(
            f"edge proxy batch: {write.method} {write.path} is inside an earlier write"
        )
    _lend(write.body, borrowed)
    body = write.body
    if write.method == "DELETE":
        _forget(_get(parent, key), index)
        del parent[key]
    elif write.method == "PATCH":
        _forget(_get(parent, key), index)
        parent[key] = body
        _remember(body, parent, index)
    elif write.method == "PUT" and isinstance(parent, list):
        if not isinstance(key, int) or key > len(parent):
            raise _Missing
        parent.insert(key, body)
        _remember(body, parent, index)
    elif write.method == "PUT":
        if key in parent:
            raise RuntimeFailed(f"edge proxy refused PUT {write.path}: it exists")
        parent[key] = body
        _remember(body, parent, index)
    elif write.method == "POST" and key == _EACH:
        if not isinstance(parent, list) or not isinstance(body, list):
            raise _Missing
        parent.extend(body)
        for item in body:
            _remember(item, parent, index)
    elif write.method == "POST" and isinstance(target, list):
        target.append(body)
        _remember(body, target, index)
    elif write.method == "POST" and isinstance(parent, dict):
        _forget(parent.get(key), index)
        parent[key] = body
        _remember(body, parent, index)
    else:
        raise RuntimeFailed(f"edge proxy batch cannot apply {write.method} {write.path}")


def _locate(servers: dict[str, Any], index: dict[str, Any], path: str) -> tuple[Any, Any]:
    """The container and key (or index) ``path`` names."""
    if path.startswith(_BY_ID):
        ident, _, rest = path[len(_BY_ID) :].partition("/")
        if ident not in index:
            raise _Missing
        parent, node = index[ident]
        if not rest:
            return parent, _key_of(parent, node)
        segments = rest.split("/")
    else:
        node, segments = servers, path[len(SERVERS_PATH) + 1 :].split("/")
    for segment in segments[:-1]:
        node = _get(node, _key(node, segment))
    return node, _key(node, segments[-1])


def _key(node: Any, segment: str) -> Any:
    if isinstance(node, list):
        if segment == _EACH:
            return segment
        if not segment.isdigit():
            raise _Missing
        return int(segment)
    if isinstance(node, dict):
        return segment
    raise _Missing


_ABSENT: Final = object()


def _get(node: Any, key: Any, default: Any = _ABSENT) -> Any:
    try:
        return node[key]
    except (KeyError, IndexError, TypeError):
        if default is _ABSENT:
            raise _Missing from None
        return default


def _key_of(parent: Any, node: dict[str, Any]) -> Any:
    """Where ``node`` sits in ``parent`` (by identity: equal routes may repeat)."""
    items = enumerate(parent) if isinstance(parent, list) else parent.items()
    for key, value in items:
        if value is node:
            return key
    raise _Missing


def _lend(node: Any, borrowed: set[int]) -> None:
    """Note the containers of a write's body (the caller's objects)."""
    if isinstance(node, dict | list):
        borrowed.add(id(node))
        for value in node.values() if isinstance(node, dict) else node:
            _lend(value, borrowed)


def _remember(node: Any, parent: Any, index: dict[str, Any]) -> None:
    """Index the ``@id`` objects of ``node`` (held in ``parent``) and under it."""
    if isinstance(node, dict):
        ident = node.get("@id")
        if isinstance(ident, str) and parent is not None:
            index[ident] = (parent, node)
        for value in node.values():
            _remember(value, node, index)
    elif isinstance(node, list):
        for value in node:
            _remember(value, node, index)


def _forget(node: Any, index: dict[str, Any]) -> None:
    if isinstance(node, dict):
        ident = node.get("@id")
        if isinstance(ident, str) and index.get(ident, (None, None))[1] is node:
            del index[ident]
        for value in node.values():
            _forget(value, index)
    elif isinstance(node, list):
        for value in node:
            _forget(value, index)
