"""What the cluster clients raise, and which operations they send again after a failure.

Errors are pymemcache's classes (MemcacheServerError for a node's SERVER_ERROR, such as
`peer <name> unreachable` while a dead owner is not yet out of the ring; MemcacheClientError
for CLIENT_ERROR; MemcacheIllegalInputError for a bad key or value; socket errors and
MemcacheUnexpectedCloseError when a connection breaks) plus the three below.

Retries follow one rule: a request is sent again (to the next node on the key's ring walk,
which forwards to the owner if it is not the owner) only when that cannot change the outcome.
- A connection that could not be opened (NodeUnreachable): nothing was sent, so every
  operation is re-routed.
- A connection that broke or timed out after the request was written: the node may or may not
  have applied it. Only the operations in RETRIED are sent again: reads, which change nothing,
  and touch, which sets the same expiry again. set, add, replace, append, prepend, cas, incr,
  decr, delete, flush_all and a transaction's conditional write are not: a second set could
  overwrite a newer value another client wrote in between, a second incr counts twice, a
  second delete reports NOT_FOUND for a delete that happened. They raise instead.
"""
from __future__ import annotations

from pymemcache.exceptions import MemcacheError, MemcacheUnexpectedCloseError

#: Operations sent again after their connection broke once the request may have been sent.
RETRIED = frozenset({"get", "gets", "get_many", "gets_many", "touch", "stats",
                     "cluster_members", "ring"})


class NodeUnreachable(ConnectionError):
    """No connection to the node could be opened: the request was never sent."""

    def __init__(self, node: str, cause: BaseException):
        super().__init__(f"cannot connect to {node}: {cause}")
        self.node = node
        self.__cause__ = cause


class ClusterUnavailable(MemcacheError):
    """No node the client knows of (nor any seed) could be reached for this request."""


class PartialFailure(MemcacheError):
    """A multi-key write (set_many, delete_many) reached some owners and failed on others.

    `failed` maps each key whose owner failed to the exception; `result` is what the call
    would have returned for the keys that were answered (set_many: the keys not stored)."""

    def __init__(self, failed: dict, result):
        first = next(iter(failed.values()))
        super().__init__(f"{len(failed)} keys failed, first: {first!r}")
        self.failed = failed
        self.result = result


#: The request may have reached the node but its reply was lost (the node is then marked
#: failed and the ring refreshed). NodeUnreachable is an OSError too: test for it first.
CONNECTION_LOST = (OSError, MemcacheUnexpectedCloseError)
