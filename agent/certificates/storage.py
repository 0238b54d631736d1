"""Read the certificates Caddy stored (``certificates/<issuer>/<name>/<name>.crt``) as facts."""

from pathlib import Path

from shared.messages.certificates import CertificateObservation


def read_storage(root: Path) -> list[CertificateObservation]:
    """Every leaf under ``root/certificates``; for a name stored by several issuers, the newest.

    Unreadable or malformed files are skipped: one broken entry must not hide the others.
    """
    newest: dict[str, CertificateObservation] = {}
    base = root / "certificates"
    if not base.is_dir():
        return []
    stored = sorted(base.glob("*/*/*.crt"))
    if not stored:
        return []
    # Imported here, not at the top: X.509 parsing costs the agent about 1.5 MiB of resident
    # memory (bench/README.md, agent_cost), and a server that serves no TLS never needs it.
    from cryptography import x509

    from shared.certificate_facts import observe

    for crt in stored:
        name = crt.parent.name
        if crt.stem != name:
            continue
        try:
            cert = x509.load_pem_x509_certificates(crt.read_bytes())[0]
        except (OSError, ValueError, IndexError):
            continue
        found = observe(name, cert, directory=crt.parent.parent.name)
        kept = newest.get(name)
        if kept is None or found.not_before > kept.not_before:
            newest[name] = found
    return [newest[n] for n in sorted(newest)]
