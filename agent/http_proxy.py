"""The HTTP proxy the environment names (``HTTPS_PROXY``, ``NO_PROXY``) and its tunnel.

Only the agent's calls to the coordinator go through one (enrolling, archive downloads; the
link has websockets' own proxy support): TLS through a ``CONNECT`` tunnel, plain HTTP as
absolute-form requests (``Endpoint.target`` in ``agent.http_client``).
"""

import asyncio
import base64
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import h11


class ProxyRefused(OSError):
    """The proxy refused the tunnel, or is not an HTTP proxy."""


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy (``HTTPS_PROXY``/``HTTP_PROXY``): TLS goes through a ``CONNECT`` tunnel,
    plain HTTP as absolute-form requests."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def for_url(cls, url: str) -> "Proxy | None":
        """The proxy the environment names for ``url``, honouring ``NO_PROXY``; None: direct.
        (Read as curl and aiohttp's ``trust_env`` read it: ``https_proxy`` for https URLs.)"""
        # Imported here: only enrolling and downloads ask, and urllib.request is not small.
        from urllib.request import getproxies_environment, proxy_bypass

        parts = urlsplit(url)
        proxies = getproxies_environment()
        chosen = proxies.get(parts.scheme)
        if not chosen or not parts.hostname or proxy_bypass(parts.hostname):
            return None
        proxy = urlsplit(chosen if "://" in chosen else f"http://{chosen}")
        if proxy.scheme != "http" or not proxy.hostname:
            raise ValueError(f"only http:// proxies are supported, not {chosen!r}")
        authorization = None
        if proxy.username is not None:
            pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls(proxy.hostname, proxy.port or 80, authorization)

    async def open(
        self, host: str, port: int, tls: ssl.SSLContext | None, limit: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection through this proxy to ``host:port``: a TLS tunnel when ``tls``, else
        the proxy itself (for absolute-form requests)."""
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=limit)
        if tls is None:
            return reader, writer
        place = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=limit)
            fields = [("Host", place)]  # as curl sends it
            if self.authorization is not None:
                fields.append(("Proxy-Authorization", self.authorization))
            tunnel = h11.Request(method="CONNECT", target=place, headers=fields)
            writer.write(conn.send(tunnel) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            # The head alone: after a 2xx the tunnel's bytes are TLS, not h11's.
            conn.receive_data(await reader.readuntil(b"\r\n\r\n"))
            answer = conn.next_event()
            if not isinstance(answer, h11.Response) or not 200 <= answer.status_code < 300:
                status = getattr(answer, "status_code", "no answer")
                raise ProxyRefused(
                    f"the proxy {self.host}:{self.port} refused the tunnel: {status}"
                )
            await writer.start_tls(tls, server_hostname=host)
        except (h11.ProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise ProxyRefused(f"the proxy {self.host}:{self.port} does not speak HTTP") from exc
        except BaseException:
            writer.close()
            raise
        return reader, writer
