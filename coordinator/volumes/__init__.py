"""Storage volumes: named volumes and bind mounts on one server, attached to resources."""
