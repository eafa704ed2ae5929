/* pc_reply: replies read back from a peer link (or the binary gate's inner connection):
 * where one ends, what a meta reply says, and a meta get answer re-spoken as the text
 * protocol's VALUE line. The one parser of the peer dialect's replies. */
#ifndef PC_REPLY_H
#define PC_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "pc_wbuf.h"

/* A peer's reply line longer than this is not something our peers send. */
#define PC_REPLY_LINE_MAX 4096

/* Every request on a peer link has exactly one reply: a line, or for "VA <n> ..." the line
 * and n + 2 bytes of value. Returns 1 and sets *frame_len when buf[0..len) starts with a
 * whole reply, 0 when more bytes are needed, -1 when the bytes cannot be a reply. */
int pc_reply_frame(const char *buf, size_t len, size_t *frame_len);

/* A reply's status: the meta protocol's two letters, and the few text lines peers answer. */
enum pc_meta_status {
    PC_MR_OTHER = 0,    /* anything else: an error line, or a VA whose value is not whole */
    PC_MR_VA, PC_MR_HD, PC_MR_EN, PC_MR_NF, PC_MR_NS, PC_MR_EX, PC_MR_MN, PC_MR_OK,
    PC_MR_TOUCHED, PC_MR_NOT_FOUND
};

/* What one reply frame says. Numbers absent from the line read 0. */
typedef struct pc_meta_reply {
    int status;             /* enum pc_meta_status */
    uint64_t flags;         /* f<flags> */
    uint64_t cas;           /* c<n>: an item's CAS, a version (EN, EX), a clock (MN), a
                               flush cut-off (OK) */
    uint64_t ttl;           /* t<seconds> */
    int ttl_never;          /* t-1 */
    const char *value;      /* VA: the value's first byte (nbytes of them), else NULL */
    uint64_t nbytes;
    size_t line_len;        /* the status line without its \r\n */
} pc_meta_reply;

/* Parses one reply frame, as pc_reply_frame delimits it; returns out->status. */
int pc_reply_meta(const char *frame, size_t len, pc_meta_reply *out);

/* Maps an `mg <key> v f [c]` reply to what `get`/`gets` answer for that key: a hit
 * ("VA <n> f<flags> [c<cas>]", value) appends "VALUE <key> <flags> <n>[ <cas>]\r\n<value>\r\n"
 * to out and returns 1; a miss ("EN") appends nothing and returns 0; anything else (an error
 * line) appends nothing and returns -1. */
int pc_reply_value(const char *frame, size_t len, const char *key, size_t nkey, int with_cas,
                   pc_wbuf *out);

#endif
