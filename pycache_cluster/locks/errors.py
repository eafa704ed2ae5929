"""The lock API's errors (what a caller catches, whichever client it uses)."""


class LockError(Exception):
    """Base of the lock API's errors."""


class LockTimeout(LockError):
    """The lock was not acquired within the caller's timeout."""


class LockLost(LockError):
    """The lease ran out (or was taken over) before it was released or renewed."""


class LockNotOwned(LockError):
    """Release or extend of a lock this handle does not hold."""


class QuorumUnavailable(LockError):
    """Fewer than a majority of the name's owners answered (or no node was reachable)."""
