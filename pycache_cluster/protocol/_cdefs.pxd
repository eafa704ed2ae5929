# C declarations the protocol layer uses besides the store's (pycache_cluster/store/_store.pxd):
# the reply buffer, the request tokenizer, the ring snapshot and the peer reply reader.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


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
    int pc_ring_set_zones(pc_ring *r, const uint16_t *zone_of_slot, unsigned nzones)
    size_t pc_ring_npoints(const pc_ring *r)
    unsigned pc_ring_nslots(const pc_ring *r)
    unsigned pc_ring_primary(const pc_ring *r, uint32_t hv) nogil
    unsigned pc_ring_owners(const pc_ring *r, uint32_t hv, unsigned n, uint16_t *out) nogil


cdef extern from "pc_reply.h":
    enum pc_meta_status:
        PC_MR_OTHER, PC_MR_VA, PC_MR_HD, PC_MR_EN, PC_MR_NF, PC_MR_NS, PC_MR_EX, PC_MR_MN,
        PC_MR_OK, PC_MR_TOUCHED, PC_MR_NOT_FOUND
    ctypedef struct pc_meta_reply:
        int status
        uint64_t flags, cas, ttl
        int ttl_never
        const char *value
        uint64_t nbytes
        size_t line_len
    int pc_reply_frame(const char *buf, size_t len, size_t *frame_len)
    int pc_reply_meta(const char *frame, size_t len, pc_meta_reply *out) nogil
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


cdef extern from "pc_binproto.h":
    enum:
        PC_BIN_HEADER
        PC_BIN_REQ
        PC_BIN_MAX_EXTLEN
        PC_BIN_RBUF
        PC_BIN_MECH_MAX
    enum:
        PC_BIN_GET, PC_BIN_SET, PC_BIN_ADD, PC_BIN_REPLACE, PC_BIN_DELETE, PC_BIN_INCR,
        PC_BIN_DECR, PC_BIN_QUIT, PC_BIN_FLUSH, PC_BIN_NOOP, PC_BIN_VERSION, PC_BIN_GETK,
        PC_BIN_APPEND, PC_BIN_PREPEND, PC_BIN_STAT, PC_BIN_TOUCH, PC_BIN_GAT,
        PC_BIN_SASL_LIST, PC_BIN_SASL_AUTH, PC_BIN_SASL_STEP, PC_BIN_GATK
    enum:
        PC_BIN_OK, PC_BIN_ENOENT, PC_BIN_EEXISTS, PC_BIN_E2BIG, PC_BIN_EINVAL,
        PC_BIN_NOT_STORED, PC_BIN_DELTA_BADVAL, PC_BIN_NOT_MY_VBUCKET, PC_BIN_AUTH_ERROR,
        PC_BIN_AUTH_CONTINUE, PC_BIN_UNKNOWN_COMMAND, PC_BIN_ENOMEM, PC_BIN_NOT_SUPPORTED
    ctypedef struct pc_bin_req:
        uint8_t magic, opcode, extlen, datatype
        uint16_t keylen, vbucket
        uint32_t bodylen, opaque
        uint64_t cas
    uint32_t pc_bin_u32(const char *p) noexcept nogil
    uint64_t pc_bin_u64(const char *p) noexcept nogil
    void pc_bin_parse(const char *buf, pc_bin_req *out) noexcept nogil
    uint8_t pc_bin_base(uint8_t opcode, int *quiet) noexcept nogil
    int pc_bin_valid(const pc_bin_req *r, uint8_t base) noexcept nogil
    void pc_bin_header(pc_wbuf *b, uint8_t opcode, uint16_t status, uint8_t extlen,
                       uint16_t keylen, uint32_t bodylen, uint32_t opaque_net,
                       uint64_t cas) noexcept nogil
    void pc_bin_add_u32(pc_wbuf *b, uint32_t v) noexcept nogil
    void pc_bin_add_u64(pc_wbuf *b, uint64_t v) noexcept nogil
    void pc_bin_error(pc_wbuf *b, uint8_t opcode, uint16_t status, uint32_t opaque_net,
                      const char *msg) noexcept nogil


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
