"""Where the CLI finds its coordinator: flags, then environment, then the file ``login`` writes."""

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

URL_ENV: Final = "BERTH_URL"
TOKEN_ENV: Final = "BERTH_TOKEN"  # noqa: S105  (a variable name, not a secret)


class ConfigError(Exception):
    """The coordinator URL or token is missing or unusable."""


@dataclass(frozen=True)
class Target:
    """The coordinator to call and the API token to call it with."""

    url: str
    token: str


def config_path() -> Path:
    """Return ``$XDG_CONFIG_HOME/berth/config.json`` (``~/.config`` when unset or relative)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "berth" / "config.json"


def normalize_url(url: str) -> str:
    """Return the coordinator's base URL without a trailing slash; refuse non-HTTP URLs."""
    clean = url.strip().rstrip("/")
    parts = urlsplit(clean)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"invalid coordinator URL {url!r}: use http(s)://HOST[:PORT]")
    return clean


def _load_saved() -> dict[str, str]:
    """Read the login file; a missing file is an empty configuration."""
    path = config_path()
    try:
        raw: object = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not a JSON object; run 'berth login' again")
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


def resolve(url: str | None, token: str | None) -> Target:
    """Pick each of URL and token from the flag, else the environment, else the login file."""
    url = url or os.environ.get(URL_ENV) or None
    token = token or os.environ.get(TOKEN_ENV) or None
    if url is None or token is None:
        saved = _load_saved()
        url = url or saved.get("url")
        token = token or saved.get("token")
    if not url or not token:
        missing = " and ".join(n for n, v in (("URL", url), ("token", token)) if not v)
        raise ConfigError(
            f"no coordinator {missing} configured: run 'berth login --url URL --token TOKEN', "
            f"set {URL_ENV} and {TOKEN_ENV}, or pass --url and --token"
        )
    return Target(url=normalize_url(url), token=token)


def save_login(url: str, token: str) -> Path:
    """Write URL and token atomically to the login file (mode 0600, directory 0700)."""
    path = config_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({"url": url, "token": token}, file, indent=2)
                file.write("\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot save the login to {path}: {exc}") from exc
    return path


def forget_token() -> Path | None:
    """Remove the saved token (``berth logout``), keeping the URL; the file, if there was one."""
    saved = _load_saved()
    if not saved.get("token"):
        return None
    url = saved.get("url", "")
    path = config_path()
    if url:
        save_login(url, "")
    else:
        path.unlink(missing_ok=True)
    return path
