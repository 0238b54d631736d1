"""Organizations: memberships with roles, invitations, owner transfer, the current context
(docs/organizations.md)."""
