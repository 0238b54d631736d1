"""What each dependency kind needs: port, data path, credentials, health check, URL scheme."""

import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from shared.errors import InvalidRequest
from shared.messages import DependencyContainer, DependencyKind

MASK: Final = "****"
# Kinds the reference names that Berth cannot run or import yet: refused with a clear 400.
UNSUPPORTED_KINDS: Final = ("clickhouse", "object-storage", "opensearch")


@dataclass(frozen=True)
class KindSpec:
    """How Berth runs one kind (the official images' conventions, which the local images keep)."""

    kind: DependencyKind
    port: int
    data_path: str
    schemes: tuple[str, ...]
    stop_signal: str
    has_database: bool
    has_user: bool


KINDS: Final[dict[str, KindSpec]] = {
    "postgres": KindSpec(
        "postgres",
        5432,
        "/var/lib/postgresql/data",
        ("postgres", "postgresql"),
        "SIGINT",
        has_database=True,
        has_user=True,
    ),
    "redis": KindSpec(
        "redis", 6379, "/data", ("redis", "rediss"), "SIGTERM", has_database=False, has_user=False
    ),
    "mysql": KindSpec(
        "mysql",
        3306,
        "/var/lib/mysql",
        ("mysql", "mariadb"),
        "SIGTERM",
        has_database=True,
        has_user=True,
    ),
}


def spec_of(kind: str) -> KindSpec:
    """The spec of a kind Berth supports, else a 400 naming the ones it does."""
    found = KINDS.get(kind)
    if found is None:
        raise InvalidRequest(
            f"dependency kind {kind!r} is not supported; use one of {', '.join(KINDS)}",
            details={"field": "kind", "supported": list(KINDS)},
        )
    return found


@dataclass(frozen=True)
class Credentials:
    """Generated (managed) or parsed (imported) connection parts; ``password`` is secret."""

    username: str | None
    password: str
    database_name: str | None


def new_password() -> str:
    """32 random bytes, URL-safe (no quoting needed in URLs, shells or SQL literals)."""
    return secrets.token_urlsafe(32)


def generate(spec: KindSpec, slug: str) -> Credentials:
    """Fresh credentials: a random password, names derived from the slug."""
    name = slug.replace("-", "_")[:40] or "app"
    return Credentials(
        username=name if spec.has_user else None,
        password=new_password(),
        database_name=name if spec.has_database else None,
    )


def connection_url(spec: KindSpec, host: str, port: int, creds: Credentials) -> str:
    """The URL an app connects with (``postgres://user:pw@host:port/db``, ``redis://:pw@...``)."""
    # Redis 6+ names the requirepass user ``default``; redis-cli refuses an empty user name.
    user = quote(creds.username or ("default" if spec.kind == "redis" else ""), safe="")
    auth = f"{user}:{quote(creds.password, safe='')}@"
    path = f"/{quote(creds.database_name, safe='')}" if creds.database_name else ""
    return f"{spec.schemes[0]}://{auth}{host}:{port}{path}"


def masked(url: str) -> str:
    """The URL with its password replaced by ``****`` (what answers show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:{MASK}@{host}").geturl()


@dataclass(frozen=True)
class ParsedUrl:
    """An imported connection URL's safe parts."""

    host: str
    port: int
    database_name: str | None
    username: str | None


def parse_url(spec: KindSpec, url: str) -> ParsedUrl:
    """Validate an imported ``connectionUrl`` for ``spec``'s kind; a 400 says what is wrong."""

    def bad(why: str) -> InvalidRequest:
        return InvalidRequest(f"connectionUrl {why}", details={"field": "connectionUrl"})

    if any(c.isspace() or ord(c) < 32 for c in url):
        raise bad("may not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port or spec.port
    except ValueError as exc:
        raise bad(f"is not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in spec.schemes:
        raise bad(f"must start with {' or '.join(s + '://' for s in spec.schemes)}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise bad("has no host")
    path = unquote(parts.path.lstrip("/"))
    if spec.kind == "redis" and path and not path.isdigit():
        raise bad("path must be a Redis database number")
    return ParsedUrl(
        host=host,
        port=port,
        database_name=path or None,
        username=unquote(parts.username) if parts.username else None,
    )


def container_for(
    spec: KindSpec,
    image: str,
    creds: Credentials,
    *,
    cpus: float | None,
    memory_bytes: int | None,
    publish_port: bool,
    labels: dict[str, str],
) -> DependencyContainer:
    """The container the agent runs: the official images' environment and health checks."""
    environment: dict[str, str] = {}
    command: list[str] = []
    health: list[str] = []
    match spec.kind:
        case "postgres":
            environment = {
                "POSTGRES_USER": creds.username or "postgres",
                "POSTGRES_PASSWORD": creds.password,
                "POSTGRES_DB": creds.database_name or "postgres",
            }
            health = ["pg_isready", "-h", "127.0.0.1", "-U", creds.username or "postgres", "-q"]
        case "redis":
            # The official image has no password variable: redis-server takes it as an argument.
            command = ["redis-server", "--requirepass", creds.password, "--appendonly", "yes"]
            health = [
                "sh",
                "-c",
                'redis-cli -a "$0" --no-auth-warning ping | grep -q PONG',
                creds.password,
            ]
        case "mysql":
            environment = {
                "MARIADB_USER": creds.username or "app",
                "MARIADB_PASSWORD": creds.password,
                "MARIADB_DATABASE": creds.database_name or "app",
                "MARIADB_RANDOM_ROOT_PASSWORD": "1",
            }
            # As the app's user: root has no network login, and a refused ping is logged.
            health = [
                "sh",
                "-c",
                'mariadb-admin ping -h 127.0.0.1 -u"$MARIADB_USER" -p"$MARIADB_PASSWORD" --silent',
            ]
    return DependencyContainer(
        kind=spec.kind,
        image=image,
        environment=environment,
        command=command,
        data_path=spec.data_path,
        port=spec.port,
        health_command=health,
        stop_signal=spec.stop_signal,
        cpus=cpus,
        memory_bytes=memory_bytes,
        publish_port=publish_port,
        labels=labels,
    )
