"""Workspace services: projects (and, later, their environments and resources)."""
