/* pc_proto: request tokenizer for memcached's text and meta protocols (no storage access). */
#ifndef PC_PROTO_H
#define PC_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* memcached's limits: MAX_TOKENS per tokenize pass, and a line still without '\n' after this
 * many bytes closes the connection unless it is a (possibly huge) get/gets. */
#define PC_MAX_TOKENS 24
#define PC_LINE_MAX 2048
#define PC_MFLAG_MAX_OPT_LENGTH 20
#define PC_MFLAG_MAX_OPAQUE_LENGTH 32

typedef struct pc_token {
    char *value;    /* NUL-terminated in place; the terminal token's value is NULL, or the
                       first unprocessed byte when the line had more than PC_MAX_TOKENS - 1 */
    size_t length;
} pc_token;

typedef enum pc_cmd {
    PC_CMD_ERROR = 0,   /* unknown command or a wrong token count: "ERROR" */
    PC_CMD_GET, PC_CMD_GETS, PC_CMD_GAT, PC_CMD_GATS,
    PC_CMD_SET, PC_CMD_ADD, PC_CMD_REPLACE, PC_CMD_APPEND, PC_CMD_PREPEND, PC_CMD_CAS,
    PC_CMD_DELETE, PC_CMD_INCR, PC_CMD_DECR, PC_CMD_TOUCH,
    PC_CMD_STATS, PC_CMD_FLUSH_ALL, PC_CMD_VERSION, PC_CMD_VERBOSITY, PC_CMD_QUIT,
    PC_CMD_SHUTDOWN, PC_CMD_CACHE_MEMLIMIT,
    PC_CMD_MG, PC_CMD_MS, PC_CMD_MD, PC_CMD_MA, PC_CMD_MN, PC_CMD_ME,
    PC_CMD_HTTP,        /* "... HTTP/x": memcached closes the connection */
    PC_CMD_OTHER,       /* a command memcached knows that we hand to Python (slabs, lru...) */
    PC_CMD_EXTENSION,   /* not memcached's: Python decides (future cluster/lock commands) */
} pc_cmd;

/* Looks for the next request line in buf[0..len). Returns 1 and sets *line_end (index of the
 * '\n') when a line is complete; 0 when more bytes are needed; -1 when memcached would close
 * the connection (over PC_LINE_MAX bytes without '\n' and not a get/gets). */
int pc_proto_find_line(const char *buf, size_t len, size_t *line_end);

/* Terminates the line ending at buf[line_end] ('\n', and a '\r' before it when the line is
 * longer than one byte) and returns its length as memcached sees it (up to the first NUL). */
size_t pc_proto_terminate(char *buf, size_t line_end);

/* memcached's tokenize_command(): splits on ' ' only, NUL-terminates tokens in place, returns
 * the token count including the terminal token. */
size_t pc_tokenize(char *command, pc_token *tokens, size_t max_tokens);

/* Classifies a tokenized line; the token-count rules (WANT_TOKENS) are applied here, so the
 * result is PC_CMD_ERROR whenever memcached would answer a bare "ERROR". */
pc_cmd pc_proto_command(const pc_token *tokens, size_t ntokens);

/* memcached's safe_strto* over a NUL-terminated token (strtol rules, whitespace after the
 * digits tolerated, range errors rejected). Return 1 on success. */
int pc_strtol(const char *str, int32_t *out);
int pc_strtoul(const char *str, uint32_t *out);
int pc_strtoull(const char *str, uint64_t *out);

/* The flags of a meta command (mg ms md ma), as memcached's _meta_flag_preparse reads them.
 * Times are the client's raw values: the store applies exptime rules. */
typedef struct pc_meta_flags {
    unsigned has_error : 1, no_update : 1, locked : 1, vivify : 1, la : 1, value : 1;
    unsigned set_stale : 1, no_reply : 1, has_cas : 1, new_ttl : 1, key_binary : 1;
    unsigned allow_version : 1;   /* in: E is accepted (peer links only) */
    unsigned has_version : 1;     /* E: a replica's write at exactly this version */
    char mode;                 /* M: the mode switch of ms and ma, 0 when absent */
    int32_t exptime;           /* T */
    int32_t autoviv_exptime;   /* N */
    int32_t recache_time;      /* R */
    uint32_t client_flags;     /* F */
    uint64_t req_cas_id;       /* C */
    uint64_t delta;            /* D (ma), 1 unless given */
    uint64_t initial;          /* J (ma) */
    uint64_t version;          /* E */
} pc_meta_flags;

/* Reads the flag tokens from tokens[start] on; base64-decodes the key token in place for 'b'.
 * Returns 0, or -1 with *errstr set to memcached's error line. E<version> is memcached's
 * "invalid flag" unless the caller set of->allow_version first. */
int pc_meta_preparse(pc_token *tokens, size_t start, pc_meta_flags *of, const char **errstr);

/* Writes v in decimal at p; returns the byte count (at most 20). */
size_t pc_u64toa(uint64_t v, char *p);

/* memcached's base64 for the meta 'b' flag. decode returns 0 on invalid input. */
size_t pc_base64_decode(const unsigned char *src, size_t len, unsigned char *out, size_t out_len);
size_t pc_base64_encode(const unsigned char *src, size_t len, unsigned char *out, size_t out_len);

/* The slab class memcached 1.6 (-n 48 -f 1.25) would place an item of this total size in,
 * for `me`'s cls= field. */
unsigned pc_proto_slab_class(size_t ntotal, size_t item_size_max);

#endif
