"""Imported certificates into Caddy (``apps.tls.certificates.load_pem``), and their facts."""

from typing import Any, Final

from agent.certificates.caddy_logs import CaddyAdmin
from shared.messages.certificates import CertificateObservation, ImportedCertificate

TAG: Final = "berth-imported"


def load_pem_entries(certificates: list[ImportedCertificate]) -> list[dict[str, Any]]:
    """Caddy's ``load_pem`` entries, tagged so Berth's own are told from anyone else's."""
    return [
        {
            "certificate": c.certificate_chain,
            "key": c.private_key,
            "tags": [TAG, c.certificate_id],
        }
        for c in certificates
    ]


async def _create_tls_app(admin: CaddyAdmin, tls: dict[str, Any]) -> None:
    """Create ``apps.tls`` and whichever parents are missing (an edge not set up yet)."""
    status, apps = await admin.call("GET", "/config/apps")
    if status < 400 and isinstance(apps, dict):
        path, body = "/config/apps/tls", tls
    else:
        status, config = await admin.call("GET", "/config/")
        if status < 400 and isinstance(config, dict):
            path, body = "/config/apps", {"tls": tls}
        else:
            path, body = "/config/", {"apps": {"tls": tls}}
    status, answer = await admin.call("POST", path, body)
    if status >= 400:
        raise OSError(f"Caddy refused the imported certificates ({status}): {answer}")


async def load(admin: CaddyAdmin, certificates: list[ImportedCertificate]) -> None:
    """Make Caddy serve exactly ``certificates`` among those Berth loaded (others are kept)."""
    ours = load_pem_entries(certificates)
    status, tls = await admin.call("GET", "/config/apps/tls")
    if status >= 400 or not isinstance(tls, dict):
        if ours:
            await _create_tls_app(admin, {"certificates": {"load_pem": ours}})
        return
    current = tls.get("certificates")
    loaders: dict[str, Any] = current if isinstance(current, dict) else {}
    loaded = loaders.get("load_pem") or []
    theirs = [e for e in loaded if not (isinstance(e, dict) and TAG in (e.get("tags") or []))]
    if [e for e in loaded if e not in theirs] == ours:
        return  # already served: posting again would reload Caddy for nothing
    status, answer = await admin.call(
        "POST", "/config/apps/tls/certificates", {**loaders, "load_pem": theirs + ours}
    )
    if status >= 400:
        raise OSError(f"Caddy refused the imported certificates ({status}): {answer}")


def facts(certificates: list[ImportedCertificate]) -> list[CertificateObservation]:
    """What the loaded certificates are (the leaf of each chain)."""
    found: list[CertificateObservation] = []
    if not certificates:
        return found
    # Imported on first use, as in ``storage.read_storage``: most agents never parse X.509.
    from cryptography import x509

    from shared.certificate_facts import observe

    for c in certificates:
        try:
            leaf = x509.load_pem_x509_certificates(c.certificate_chain.encode())[0]
        except (ValueError, IndexError):
            continue
        found.append(observe(c.domain_name, leaf, source="imported"))
    return found
