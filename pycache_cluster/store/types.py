"""The outcome of a store operation, as Python sees it."""
import enum


class StoreResult(enum.IntEnum):
    """Mirrors csrc/pc_store.h's pc_status, in the same order."""

    STORED = 0
    NOT_STORED = 1
    EXISTS = 2
    NOT_FOUND = 3
    DELETED = 4
    TOUCHED = 5
    OK = 6
    NON_NUMERIC = 7
    TOO_LARGE = 8
    NO_MEMORY = 9
