"""Berth wire contract: message models, error bodies and crypto used by coordinator and agent."""
