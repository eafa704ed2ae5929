/* pc_binproto: memcached's binary protocol frames (see pc_binproto.h). */
#include "pc_binproto.h"

#include <string.h>

void pc_bin_parse(const char *buf, pc_bin_req *out)
{
    const unsigned char *u = (const unsigned char *)buf;
    out->magic = u[0];
    out->opcode = u[1];
    out->keylen = (uint16_t)(u[2] << 8 | u[3]);
    out->extlen = u[4];
    out->datatype = u[5];
    out->vbucket = (uint16_t)(u[6] << 8 | u[7]);
    out->bodylen = pc_bin_u32(buf + 8);
    memcpy(&out->opaque, buf + 12, 4);
    out->cas = pc_bin_u64(buf + 16);
}

uint8_t pc_bin_base(uint8_t opcode, int *quiet)
{
    *quiet = 1;
    switch (opcode) {
    case PC_BIN_SETQ: return PC_BIN_SET;
    case PC_BIN_ADDQ: return PC_BIN_ADD;
    case PC_BIN_REPLACEQ: return PC_BIN_REPLACE;
    case PC_BIN_DELETEQ: return PC_BIN_DELETE;
    case PC_BIN_INCRQ: return PC_BIN_INCR;
    case PC_BIN_DECRQ: return PC_BIN_DECR;
    case PC_BIN_QUITQ: return PC_BIN_QUIT;
    case PC_BIN_FLUSHQ: return PC_BIN_FLUSH;
    case PC_BIN_APPENDQ: return PC_BIN_APPEND;
    case PC_BIN_PREPENDQ: return PC_BIN_PREPEND;
    case PC_BIN_GETQ: return PC_BIN_GET;
    case PC_BIN_GETKQ: return PC_BIN_GETK;
    case PC_BIN_GATQ: return PC_BIN_GAT;
    case PC_BIN_GATKQ: return PC_BIN_GATK;
    default:
        *quiet = 0;
        return opcode;
    }
}

int pc_bin_valid(const pc_bin_req *r, uint8_t base)
{
    uint32_t ext = r->extlen, key = r->keylen, body = r->bodylen;
    int empty = ext == 0 && key == 0 && body == 0;
    switch (base) {
    case PC_BIN_VERSION:
    case PC_BIN_NOOP:
    case PC_BIN_QUIT:
    case PC_BIN_SASL_LIST:
        return empty;
    case PC_BIN_FLUSH:
        return key == 0 && body == ext && (ext == 0 || ext == 4);
    case PC_BIN_SET:
    case PC_BIN_ADD:
    case PC_BIN_REPLACE:
        return ext == 8 && key != 0 && body >= key + 8;
    case PC_BIN_GET:
    case PC_BIN_GETK:
        return ext == 0 && body == key && key > 0;
    case PC_BIN_DELETE:
        return key > 0 && ext == 0 && body == key;
    case PC_BIN_INCR:
    case PC_BIN_DECR:
        return key > 0 && ext == 20 && body == key + ext;
    case PC_BIN_APPEND:
    case PC_BIN_PREPEND:
        return key > 0 && ext == 0;
    case PC_BIN_STAT:
        return ext == 0;
    case PC_BIN_SASL_AUTH:
    case PC_BIN_SASL_STEP:
        return ext == 0 && key != 0;
    case PC_BIN_TOUCH:
    case PC_BIN_GAT:
    case PC_BIN_GATK:
        return ext == 4 && key != 0;
    default:
        return 1;
    }
}

const char *pc_bin_errstr(uint16_t status)
{
    switch (status) {
    case PC_BIN_ENOMEM: return "Out of memory";
    case PC_BIN_UNKNOWN_COMMAND: return "Unknown command";
    case PC_BIN_ENOENT: return "Not found";
    case PC_BIN_EINVAL: return "Invalid arguments";
    case PC_BIN_EEXISTS: return "Data exists for key.";
    case PC_BIN_E2BIG: return "Too large.";
    case PC_BIN_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
    case PC_BIN_NOT_STORED: return "Not stored.";
    case PC_BIN_AUTH_ERROR: return "Auth failure.";
    default: return "UNHANDLED ERROR";
    }
}

void pc_bin_error(pc_wbuf *b, uint8_t opcode, uint16_t status, uint32_t opaque_net,
                  const char *msg)
{
    size_t n;
    if (msg == NULL)
        msg = pc_bin_errstr(status);
    n = strlen(msg);
    pc_bin_header(b, opcode, status, 0, 0, (uint32_t)n, opaque_net, 0);
    pc_wbuf_add(b, msg, n);
}
