"""Domain-name and path-prefix rules: one normal form (IDNA ASCII, lowercase, no final dot)."""

import ipaddress
import re
from typing import Final

import idna

from shared.errors import InvalidRequest

MAX_NAME: Final = 253
MAX_LABEL: Final = 63
_LDH = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_PATH_PREFIX = re.compile(r"^/(?:[A-Za-z0-9._~!$&'()*+,;=:@%-]+/?)*$")
MAX_PATH_PREFIX: Final = 200


def _bad(value: str, reason: str, field: str = "domainName") -> InvalidRequest:
    return InvalidRequest(
        f"{field} {value!r} is not valid: {reason}",
        details={"problems": [{"field": field, "message": reason}]},
    )


def normalize_domain(value: str) -> str:
    """The ASCII form of a host name a binding may claim, or ``InvalidRequest`` saying why.

    IDNA 2008 (UTS 46 mapping, so ``Bücher.example`` becomes ``xn--bcher-kva.example``);
    no wildcard (certificates for those need DNS-01, a later step), no IP literal (a binding
    names a host; an address is not a domain), at least two labels.
    """
    raw = value.strip()
    if not raw:
        raise _bad(value, "empty")
    if raw.endswith("."):
        raise _bad(value, "no trailing dot")
    if "*" in raw:
        raise _bad(value, "wildcard domains are not supported by domain bindings yet")
    try:
        _ = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    else:
        raise _bad(value, "an IP address is not a domain name")
    try:
        ascii_name = idna.encode(raw, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise _bad(value, f"not a valid internationalised domain name ({exc})") from exc
    if len(ascii_name) > MAX_NAME:
        raise _bad(value, f"longer than {MAX_NAME} characters")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise _bad(value, "needs at least two labels (e.g. app.example.com)")
    for label in labels:
        if not label or len(label) > MAX_LABEL:
            raise _bad(value, f"every label has 1 to {MAX_LABEL} characters")
        if not _LDH.match(label):
            raise _bad(value, "labels hold letters, digits and inner hyphens only")
    if labels[-1].isdigit():
        raise _bad(value, "the top-level label cannot be numeric")
    return ascii_name


def normalize_path_prefix(value: str | None) -> str:
    """``/`` when unset; otherwise an absolute path without query, fragment or dot segments."""
    if value is None or value in ("", "/"):
        return "/"
    if len(value) > MAX_PATH_PREFIX:
        raise _bad(value, f"longer than {MAX_PATH_PREFIX} characters", "pathPrefix")
    if not _PATH_PREFIX.match(value) or "//" in value:
        raise _bad(value, "an absolute path such as /api (no query or fragment)", "pathPrefix")
    if any(part in (".", "..") for part in value.split("/")):
        raise _bad(value, "no '.' or '..' segments", "pathPrefix")
    return value.rstrip("/") or "/"
