"""Resource routes (being written)."""
