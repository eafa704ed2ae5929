"""Distributed locks: leases with fencing tokens on a quorum of a lock name's owners."""
