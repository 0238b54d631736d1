"""Domain bindings: custom host names routed to resources, DNS observation and ownership."""
