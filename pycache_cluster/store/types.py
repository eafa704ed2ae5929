"""The outcome of a store operation, as Python sees it."""
import enum


class StoreResult(enum.IntEnum):
    """Mirrors csrc/pc_store.h's pc_status, in the same order."""

    STORED = 0
    NOT_STORED = 1
    EXISTS = 2
    NOT_FOUND = 3
    DELETED = 4
    OK = 5
    NON_NUMERIC = 6
    TOO_LARGE = 7
    NO_MEMORY = 8
