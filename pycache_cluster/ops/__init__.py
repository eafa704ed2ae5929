"""Operating a node: its metrics endpoint, the fleet status view, TLS."""
