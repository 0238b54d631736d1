"""Wildcard certificates over DNS-01: RFC 2136 providers, the coordinator's ACME orders, renewal.

Debian's Caddy has no DNS provider modules, so the coordinator runs the order (``acme``) and
publishes the challenge records itself (``dnspython``, TSIG); agents then serve the result like
an imported certificate. The TSIG secret never leaves the coordinator.
"""
