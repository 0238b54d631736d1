"""The coordinator's own public address for links it hands out (install commands, invitations)."""

from aiohttp import web

from coordinator.settings import Settings


def arrival_url(request: web.Request, settings: Settings) -> str:
    """The address this connection arrived on, without ``--public-url``.

    Never the ``Host`` header: a client (or a proxy passing it through) chooses that, and what
    is built from it is piped into ``sudo bash`` on a server or mailed as a link carrying a
    secret. The socket's own address is ours; behind a proxy or for clients on other machines
    the operator passes ``--public-url``.
    """
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
    else:  # not a TCP socket: the configured listen address is all there is
        host, port = settings.host, settings.port
    return f"{request.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def public_base_url(request: web.Request, settings: Settings) -> str:
    """``--public-url`` when set, else the address this connection arrived on."""
    return settings.base_url(arrival_url(request, settings))
