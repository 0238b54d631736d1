"""Token services: API (deploy) tokens and the audit-trailed first admin."""
