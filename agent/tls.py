"""TLS client context: system CAs, or the CA file given at enrollment."""

import ssl


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """Return a verifying client context (hostname and chain checked, TLS 1.2 minimum)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
