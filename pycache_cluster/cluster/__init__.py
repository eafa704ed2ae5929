"""Cluster: membership (gossip) wired into the node; ring, router and replication come here."""
