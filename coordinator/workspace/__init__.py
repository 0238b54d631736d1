"""Workspace services: projects, environments, resources (profiles, source, secrets), variables."""
