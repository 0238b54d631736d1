"""Certificates on the edge: what Caddy holds and why an ACME order failed, reported upward."""

from pathlib import Path

from agent.certificates.feature import CertificateFeature
from agent.features import AgentFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """The certificate feature, or None while the edge serves no HTTPS (no ACME to watch)."""
    del runtime, state_dir  # certificates live in Caddy, not in containers or agent state
    tls = settings.edge_tls()
    if tls is None:
        return None
    return CertificateFeature(
        settings.edge_admin_url,
        Path(settings.caddy_data_dir),
        settings.certificate_scan_seconds,
        tls,
    )
