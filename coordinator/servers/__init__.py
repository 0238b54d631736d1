"""Server services: the server inventory, join tokens and agent enrollment."""
