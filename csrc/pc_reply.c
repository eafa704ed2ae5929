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

static int status_of(const char *line, size_t n)
{
    static const char codes[][3] = {"VA", "HD", "EN", "NF", "NS", "EX", "MN", "OK"};
    if (n >= 2 && (n == 2 || line[2] == ' ')) {
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
            if (line[0] == codes[i][0] && line[1] == codes[i][1])
                return PC_MR_VA + (int)i;
        return PC_MR_OTHER;
    }
    if (n == 7 && memcmp(line, "TOUCHED", 7) == 0)
        return PC_MR_TOUCHED;
    if (n == 9 && memcmp(line, "NOT_FOUND", 9) == 0)
        return PC_MR_NOT_FOUND;
    return PC_MR_OTHER;
}

int pc_reply_meta(const char *frame, size_t len, pc_meta_reply *out)
{
    memset(out, 0, sizeof(*out));
    const char *nl = memchr(frame, '\n', len);
    if (nl == NULL)
        return PC_MR_OTHER;
    const char *end = nl > frame && nl[-1] == '\r' ? nl - 1 : nl;
    out->line_len = (size_t)(end - frame);
    int status = status_of(frame, out->line_len);
    if (status == PC_MR_OTHER)
        return PC_MR_OTHER;
    const char *p = frame + 2;
    if (status == PC_MR_VA) {
        size_t n = p < end ? read_u64(p + 1, end, &out->nbytes) : 0;
        const char *value = nl + 1;
        if (n == 0 || (size_t)(value - frame) + out->nbytes + 2 > len)
            return PC_MR_OTHER;
        out->value = value;
        p += 1 + n;
    }
    /* Return flags, in whatever order they were asked for: " f<flags>", " c<n>", " t<ttl>"
     * (" t-1": never); the others (k, O, b, s...) are skipped whole. */
    while (p < end && *p == ' ') {
        p++;
        char f = p < end ? *p++ : 0;
        if (f == 'f')
            p += read_u64(p, end, &out->flags);
        else if (f == 'c')
            p += read_u64(p, end, &out->cas);
        else if (f == 't') {
            if (p < end && *p == '-') {
                out->ttl_never = 1;
                p++;
            }
            p += read_u64(p, end, &out->ttl);
        }
        while (p < end && *p != ' ')
            p++;
    }
    out->status = status;
    return status;
}

int pc_reply_value(const char *frame, size_t len, const char *key, size_t nkey, int with_cas,
                   pc_wbuf *out)
{
    pc_meta_reply m;
    int status = pc_reply_meta(frame, len, &m);
    if (status == PC_MR_EN)
        return 0;
    if (status != PC_MR_VA)
        return -1;
    if (pc_wbuf_reserve(out, 6 + nkey + 3 * 21 + 2 + (size_t)m.nbytes + 2) != 0)
        return -1;
    pc_wbuf_add(out, "VALUE ", 6);
    pc_wbuf_add(out, key, nkey);
    pc_wbuf_add(out, " ", 1);
    pc_wbuf_add_u64(out, (uint32_t)m.flags);
    pc_wbuf_add(out, " ", 1);
    pc_wbuf_add_u64(out, m.nbytes);
    if (with_cas) {
        pc_wbuf_add(out, " ", 1);
        pc_wbuf_add_u64(out, m.cas);
    }
    pc_wbuf_add(out, "\r\n", 2);
    pc_wbuf_add(out, m.value, (size_t)m.nbytes + 2);
    return 1;
}
