# cython: language_level=3
"""The store's change feed (csrc/pc_watch.h) for Python: attached while someone watches,
drained in batches into tuples.

The store notes every change into the feed natively; this module only moves the notes out
and turns them into Python objects, at the drainer's pace, off the request path.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

from pycache_cluster.store._store cimport Store, pc_store


cdef extern from "pc_watch.h":
    ctypedef struct pc_watch:
        pass
    ctypedef struct pc_watch_event:
        uint64_t version
        int64_t exptime
        uint32_t nbytes
        uint32_t idle
        uint8_t fetched
        uint8_t change
        uint8_t cmd
        uint8_t status
        uint8_t nkey
        char key[250]
    pc_watch *pc_watch_new(size_t capacity)
    void pc_watch_free(pc_watch *w)
    size_t pc_watch_take(pc_watch *w, pc_watch_event *out, size_t max, uint64_t *dropped)


cdef extern from "pc_store.h":
    void pc_store_watch(pc_store *s, pc_watch *w)
    void pc_store_watch_fetches(pc_store *s, int on)


#: Names of pc_change, pc_watch.h's cmd and status codes.
CHANGES = ("store", "delete", "expire", "evict", "flush", "fetch")
CMDS = ("null", "add", "set", "replace", "append", "prepend", "cas", "incr", "decr", "replica")
STATUSES = ("not_stored", "stored", "exists", "not_found", "too_large", "no_memory")
#: A fetch's status (memcached's item_get was_found).
FOUND = ("not_found", "found", "flushed", "expired")

DEF BATCH = 1024


cdef class Feed:
    """A change feed attached to `store` until close(). take() returns (records, dropped):
    records as (change, cmd, status, key, version, exptime, nbytes, idle, fetched) tuples of
    ints and bytes, oldest first (a fetch's status is FOUND's; an eviction's idle and fetched
    are memcached's la and fetch); dropped, the notes lost because the ring was full since
    the last take(). Fetches are noted only after fetches(True)."""

    cdef Store store
    cdef pc_watch *w
    cdef pc_watch_event *batch

    def __cinit__(self, Store store, size_t capacity):
        self.store = store
        self.w = pc_watch_new(capacity)
        self.batch = <pc_watch_event *>malloc(BATCH * sizeof(pc_watch_event))
        if self.w == NULL or self.batch == NULL:
            pc_watch_free(self.w)
            free(self.batch)
            self.w = NULL
            self.batch = NULL
            raise MemoryError()
        pc_store_watch(store._s, self.w)

    def take(self):
        cdef list out = []
        cdef uint64_t dropped = 0, more = 0
        cdef size_t i, n
        cdef pc_watch_event *e
        if self.w == NULL:
            return out, 0
        while True:
            n = pc_watch_take(self.w, self.batch, BATCH, &more)
            dropped += more
            for i in range(n):
                e = &self.batch[i]
                out.append((e.change, e.cmd, e.status,
                            PyBytes_FromStringAndSize(e.key, e.nkey), e.version, e.exptime,
                            e.nbytes, e.idle, e.fetched))
            if n < BATCH:
                return out, dropped

    def fetches(self, bint on):
        """Whether clients' lookups are noted too: there is one for nearly every request,
        so only while someone watches them."""
        if self.w != NULL:
            pc_store_watch_fetches(self.store._s, on)

    def close(self):
        if self.w != NULL:
            pc_store_watch(self.store._s, NULL)
            pc_watch_free(self.w)
            self.w = NULL
        free(self.batch)
        self.batch = NULL

    def __dealloc__(self):
        self.close()
