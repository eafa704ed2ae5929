/* pc_binproto: memcached's binary protocol frames (protocol_binary.h): the request header,
 * which frames memcached accepts per opcode, and response headers and error bodies. Parsing
 * never touches storage; the commands are in pycache_cluster/protocol/_binary.pxi. */
#ifndef PC_BINPROTO_H
#define PC_BINPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "pc_wbuf.h"

#define PC_BIN_HEADER 24
#define PC_BIN_REQ 0x80
#define PC_BIN_RES 0x81
/* memcached keeps extras of at most this many bytes (BIN_MAX_EXTLEN); more are skipped. */
#define PC_BIN_MAX_EXTLEN 20
/* memcached reads a header, extras and key into its fixed 16 KiB read buffer: a frame whose
 * header, extras and key do not fit there is never dispatched (the connection closes once
 * the buffer is full). */
#define PC_BIN_RBUF 16384
/* Longest SASL mechanism name memcached accepts (MAX_SASL_MECH_LEN). */
#define PC_BIN_MECH_MAX 32

enum pc_bin_opcode {
    PC_BIN_GET = 0x00, PC_BIN_SET = 0x01, PC_BIN_ADD = 0x02, PC_BIN_REPLACE = 0x03,
    PC_BIN_DELETE = 0x04, PC_BIN_INCR = 0x05, PC_BIN_DECR = 0x06, PC_BIN_QUIT = 0x07,
    PC_BIN_FLUSH = 0x08, PC_BIN_GETQ = 0x09, PC_BIN_NOOP = 0x0a, PC_BIN_VERSION = 0x0b,
    PC_BIN_GETK = 0x0c, PC_BIN_GETKQ = 0x0d, PC_BIN_APPEND = 0x0e, PC_BIN_PREPEND = 0x0f,
    PC_BIN_STAT = 0x10, PC_BIN_SETQ = 0x11, PC_BIN_ADDQ = 0x12, PC_BIN_REPLACEQ = 0x13,
    PC_BIN_DELETEQ = 0x14, PC_BIN_INCRQ = 0x15, PC_BIN_DECRQ = 0x16, PC_BIN_QUITQ = 0x17,
    PC_BIN_FLUSHQ = 0x18, PC_BIN_APPENDQ = 0x19, PC_BIN_PREPENDQ = 0x1a,
    PC_BIN_VERBOSITY = 0x1b, PC_BIN_TOUCH = 0x1c, PC_BIN_GAT = 0x1d, PC_BIN_GATQ = 0x1e,
    PC_BIN_SASL_LIST = 0x20, PC_BIN_SASL_AUTH = 0x21, PC_BIN_SASL_STEP = 0x22,
    PC_BIN_GATK = 0x23, PC_BIN_GATKQ = 0x24,
};

enum pc_bin_status {
    PC_BIN_OK = 0x00, PC_BIN_ENOENT = 0x01, PC_BIN_EEXISTS = 0x02, PC_BIN_E2BIG = 0x03,
    PC_BIN_EINVAL = 0x04, PC_BIN_NOT_STORED = 0x05, PC_BIN_DELTA_BADVAL = 0x06,
    PC_BIN_NOT_MY_VBUCKET = 0x07, PC_BIN_AUTH_ERROR = 0x20, PC_BIN_AUTH_CONTINUE = 0x21,
    PC_BIN_UNKNOWN_COMMAND = 0x81, PC_BIN_ENOMEM = 0x82, PC_BIN_NOT_SUPPORTED = 0x83,
};

/* A request header in host byte order. */
typedef struct pc_bin_req {
    uint8_t magic, opcode, extlen, datatype;
    uint16_t keylen, vbucket;
    uint32_t bodylen, opaque;   /* opaque stays in network order: it is echoed as is */
    uint64_t cas;
} pc_bin_req;

static inline uint32_t pc_bin_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static inline uint64_t pc_bin_u64(const char *p)
{
    return (uint64_t)pc_bin_u32(p) << 32 | pc_bin_u32(p + 4);
}

/* buf holds at least PC_BIN_HEADER bytes. */
void pc_bin_parse(const char *buf, pc_bin_req *out);

/* The command a quiet opcode is the silent twin of (GETQ -> GET, ...); *quiet says whether it
 * was one. Other opcodes map to themselves. */
uint8_t pc_bin_base(uint8_t opcode, int *quiet);

/* memcached's checks of the lengths for `base` (dispatch_bin_command): 0 when the frame is a
 * protocol error (EINVAL, then the connection closes). Opcodes it does not know pass. */
int pc_bin_valid(const pc_bin_req *r, uint8_t base);

/* The body memcached sends with an error status when it has no text of its own. */
const char *pc_bin_errstr(uint16_t status);

/* A response header: the request's opcode and opaque, then these lengths and CAS. */
static inline __attribute__((always_inline)) void
pc_bin_header(pc_wbuf *b, uint8_t opcode, uint16_t status, uint8_t extlen, uint16_t keylen,
              uint32_t bodylen, uint32_t opaque_net, uint64_t cas)
{
    unsigned char h[PC_BIN_HEADER];
    int i;
    h[0] = PC_BIN_RES;
    h[1] = opcode;
    h[2] = (unsigned char)(keylen >> 8);
    h[3] = (unsigned char)keylen;
    h[4] = extlen;
    h[5] = 0;                   /* datatype: raw bytes */
    h[6] = (unsigned char)(status >> 8);
    h[7] = (unsigned char)status;
    for (i = 0; i < 4; i++)
        h[8 + i] = (unsigned char)(bodylen >> (24 - 8 * i));
    memcpy(h + 12, &opaque_net, 4);
    for (i = 0; i < 8; i++)
        h[16 + i] = (unsigned char)(cas >> (56 - 8 * i));
    pc_wbuf_add(b, h, sizeof(h));
}

/* A big-endian 32- or 64-bit field of a response body. */
static inline void pc_bin_add_u32(pc_wbuf *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    pc_wbuf_add(b, p, 4);
}

static inline void pc_bin_add_u64(pc_wbuf *b, uint64_t v)
{
    pc_bin_add_u32(b, (uint32_t)(v >> 32));
    pc_bin_add_u32(b, (uint32_t)v);
}

/* An error response (status, no extras or key) whose body is msg, or memcached's text for
 * the status when msg is NULL. */
void pc_bin_error(pc_wbuf *b, uint8_t opcode, uint16_t status, uint32_t opaque_net,
                  const char *msg);

#endif
