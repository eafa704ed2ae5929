# C declarations the protocol layer uses besides the store's (pycache_cluster/store/_store.pxd):
# the reply buffer, the request tokenizer, the ring snapshot and the peer reply reader.
from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t


cdef extern from "pc_wbuf.h":
    ctypedef struct pc_wbuf:
        char *data
        size_t len
        size_t cap
    void pc_wbuf_init(pc_wbuf *b)
    void pc_wbuf_free(pc_wbuf *b)
    void pc_wbuf_clear(pc_wbuf *b)
    int pc_wbuf_reserve(pc_wbuf *b, size_t n)
    int pc_wbuf_add(pc_wbuf *b, const void *src, size_t n)
    int pc_wbuf_add_u64(pc_wbuf *b, uint64_t v)
    int pc_wbuf_add_i64(pc_wbuf *b, int64_t v)


cdef extern from "pc_proto.h":
    enum:
        PC_MAX_TOKENS
        PC_LINE_MAX
        PC_MFLAG_MAX_OPT_LENGTH
        PC_MFLAG_MAX_OPAQUE_LENGTH
    ctypedef struct pc_token:
        char *value
        size_t length
    ctypedef enum pc_cmd:
        PC_CMD_ERROR, PC_CMD_GET, PC_CMD_GETS, PC_CMD_GAT, PC_CMD_GATS,
        PC_CMD_SET, PC_CMD_ADD, PC_CMD_REPLACE, PC_CMD_APPEND, PC_CMD_PREPEND, PC_CMD_CAS,
        PC_CMD_DELETE, PC_CMD_INCR, PC_CMD_DECR, PC_CMD_TOUCH,
        PC_CMD_STATS, PC_CMD_FLUSH_ALL, PC_CMD_VERSION, PC_CMD_VERBOSITY, PC_CMD_QUIT,
        PC_CMD_SHUTDOWN, PC_CMD_CACHE_MEMLIMIT,
        PC_CMD_MG, PC_CMD_MS, PC_CMD_MD, PC_CMD_MA, PC_CMD_MN, PC_CMD_ME,
        PC_CMD_HTTP, PC_CMD_OTHER, PC_CMD_EXTENSION
    ctypedef struct pc_meta_flags:
        unsigned has_error, no_update, locked, vivify, la, value
        unsigned set_stale, no_reply, has_cas, new_ttl, key_binary
        unsigned allow_version, has_version
        char mode
        int32_t exptime
        int32_t autoviv_exptime
        int32_t recache_time
        uint32_t client_flags
        uint64_t req_cas_id
        uint64_t delta
        uint64_t initial
        uint64_t version
    int pc_proto_find_line(const char *buf, size_t len, size_t *line_end)
    size_t pc_proto_terminate(char *buf, size_t line_end)
    size_t pc_tokenize(char *command, pc_token *tokens, size_t max_tokens)
    pc_cmd pc_proto_command(const pc_token *tokens, size_t ntokens)
    int pc_strtol(const char *str, int32_t *out)
    int pc_strtoul(const char *str, uint32_t *out)
    int pc_strtoull(const char *str, uint64_t *out)
    int pc_meta_preparse(pc_token *tokens, size_t start, pc_meta_flags *of,
                         const char **errstr)
    size_t pc_u64toa(uint64_t v, char *p)
    size_t pc_base64_decode(const unsigned char *src, size_t len, unsigned char *out,
                            size_t out_len)
    size_t pc_base64_encode(const unsigned char *src, size_t len, unsigned char *out,
                            size_t out_len)
    unsigned pc_proto_slab_class(size_t ntotal, size_t item_size_max)


cdef extern from "pc_ring.h":
    ctypedef struct pc_ring:
        pass
    enum:
        PC_RING_MAX_SLOTS
    pc_ring *pc_ring_new(const uint32_t *points, const uint16_t *slots, size_t npoints,
                         unsigned nslots)
    void pc_ring_free(pc_ring *r)
    size_t pc_ring_npoints(const pc_ring *r)
    unsigned pc_ring_nslots(const pc_ring *r)
    unsigned pc_ring_primary(const pc_ring *r, uint32_t hv) nogil
    unsigned pc_ring_owners(const pc_ring *r, uint32_t hv, unsigned n, uint16_t *out) nogil


cdef extern from "pc_reply.h":
    int pc_reply_frame(const char *buf, size_t len, size_t *frame_len)
    int pc_reply_value(const char *frame, size_t len, const char *key, size_t nkey,
                       int with_cas, pc_wbuf *out)


cdef extern from "pc_lat.h":
    enum:
        PC_LAT_CMDS
        PC_LAT_BUCKETS
        PC_LAT_EVERY
    ctypedef struct pc_lat:
        uint64_t count[32][23]
        uint64_t sum_ns[32]
        uint32_t tick
    int pc_lat_due(pc_lat *l) noexcept nogil
    uint64_t pc_lat_now() noexcept nogil
    void pc_lat_add(pc_lat *l, unsigned cmd, uint64_t ns) noexcept nogil


cdef extern from "pc_prefix.h":
    ctypedef struct pc_prefix:
        pass
    pc_prefix *pc_prefix_new(char delimiter)
    void pc_prefix_free(pc_prefix *p)
    void pc_prefix_clear(pc_prefix *p)
    void pc_prefix_get(pc_prefix *p, const char *key, size_t nkey, int hit) noexcept
    void pc_prefix_set(pc_prefix *p, const char *key, size_t nkey) noexcept
    void pc_prefix_delete(pc_prefix *p, const char *key, size_t nkey) noexcept
    int pc_prefix_dump(const pc_prefix *p, pc_wbuf *out)
    size_t pc_prefix_count(const pc_prefix *p)
