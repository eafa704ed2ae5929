/* pc_reply: replies read back from a peer link (see pc_reply.h). */
#include "pc_reply.h"

#include <string.h>

/* Reads a decimal at p (at most 20 digits); returns the digit count, 0 if none. */
static size_t read_u64(const char *p, const char *end, uint64_t *out)
{
    size_t n = 0;
    uint64_t v = 0;
    while (p + n < end && n < 20 && p[n] >= '0' && p[n] <= '9') {
        v = v * 10 + (uint64_t)(p[n] - '0');
        n++;
    }
    *out = v;
    return n;
}

int pc_reply_frame(const char *buf, size_t len, size_t *frame_len)
{
    size_t scan = len < PC_REPLY_LINE_MAX ? len : PC_REPLY_LINE_MAX;
    const char *nl = memchr(buf, '\n', scan);
    if (nl == NULL)
        return len >= PC_REPLY_LINE_MAX ? -1 : 0;
    size_t line = (size_t)(nl - buf) + 1;
    if (line >= 3 && memcmp(buf, "VA ", 3) == 0) {
        uint64_t nbytes;
        /* memcached's largest item (-I 1024m): a peer claiming more is lying, and its
         * link must not buffer it. */
        if (read_u64(buf + 3, nl, &nbytes) == 0 || nbytes > (uint64_t)1 << 30)
            return -1;
        if (len - line < nbytes + 2)
            return 0;
        *frame_len = line + (size_t)nbytes + 2;
        return 1;
    }
    *frame_len = line;
    return 1;
}

int pc_reply_value(const char *frame, size_t len, const char *key, size_t nkey, int with_cas,
                   pc_wbuf *out)
{
    if (len >= 2 && frame[0] == 'E' && frame[1] == 'N')
        return 0;
    if (len < 3 || memcmp(frame, "VA ", 3) != 0)
        return -1;
    const char *nl = memchr(frame, '\n', len);
    if (nl == NULL)
        return -1;
    const char *p = frame + 3, *end = nl;
    uint64_t nbytes = 0, flags = 0, cas = 0;
    size_t n = read_u64(p, end, &nbytes);
    if (n == 0)
        return -1;
    p += n;
    /* Return flags come back in the order they were asked for: " f<flags>", " c<cas>". */
    while (p < end && *p == ' ') {
        p++;
        if (p < end && (*p == 'f' || *p == 'c')) {
            uint64_t *dst = *p == 'f' ? &flags : &cas;
            p++;
            p += read_u64(p, end, dst);
        } else {
            while (p < end && *p != ' ')
                p++;
        }
    }
    const char *value = nl + 1;
    if ((size_t)(value - frame) + nbytes + 2 > len)
        return -1;
    if (pc_wbuf_reserve(out, 6 + nkey + 3 * 21 + 2 + (size_t)nbytes + 2) != 0)
        return -1;
    pc_wbuf_add(out, "VALUE ", 6);
    pc_wbuf_add(out, key, nkey);
    pc_wbuf_add(out, " ", 1);
    pc_wbuf_add_u64(out, (uint32_t)flags);
    pc_wbuf_add(out, " ", 1);
    pc_wbuf_add_u64(out, nbytes);
    if (with_cas) {
        pc_wbuf_add(out, " ", 1);
        pc_wbuf_add_u64(out, cas);
    }
    pc_wbuf_add(out, "\r\n", 2);
    pc_wbuf_add(out, value, (size_t)nbytes + 2);
    return 1;
}
