/* pc_proto: request tokenizer for memcached's text and meta protocols (no storage access). */
#include "pc_proto.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pc_proto_find_line(const char *buf, size_t len, size_t *line_end)
{
    const char *el = memchr(buf, '\n', len);
    if (el != NULL) {
        *line_end = (size_t)(el - buf);
        return 1;
    }
    if (len > PC_LINE_MAX) {
        /* memcached: no '\n' in the first 2k "_has_ to be a large multiget". */
        const char *p = buf;
        while ((size_t)(p - buf) < len && *p == ' ')
            p++;
        size_t lead = (size_t)(p - buf), rest = len - lead;
        if (lead > 100 || !((rest >= 4 && memcmp(p, "get ", 4) == 0) ||
                            (rest >= 5 && memcmp(p, "gets ", 5) == 0)))
            return -1;
    }
    return 0;
}

size_t pc_proto_terminate(char *buf, size_t line_end)
{
    size_t el = line_end;
    if (el > 1 && buf[el - 1] == '\r')
        el--;
    buf[el] = '\0';
    return strlen(buf);
}

size_t pc_tokenize(char *command, pc_token *tokens, size_t max_tokens)
{
    char *s, *e;
    size_t ntokens = 0;
    size_t len = strlen(command);

    s = e = command;
    for (size_t i = 0; i < len; i++) {
        if (*e == ' ') {
            if (s != e) {
                tokens[ntokens].value = s;
                tokens[ntokens].length = (size_t)(e - s);
                ntokens++;
                *e = '\0';
                if (ntokens == max_tokens - 1) {
                    e++;
                    s = e; /* so we don't add an extra token */
                    break;
                }
            }
            s = e + 1;
        }
        e++;
    }
    if (s != e) {
        tokens[ntokens].value = s;
        tokens[ntokens].length = (size_t)(e - s);
        ntokens++;
    }
    /* The terminal token: NULL when the whole line was scanned, else where to resume. */
    tokens[ntokens].value = *e == '\0' ? NULL : e;
    tokens[ntokens].length = 0;
    ntokens++;
    return ntokens;
}

#define IS(tok, lit) (strcmp((tok), (lit)) == 0)
#define WANT(cond, cmd) ((cond) ? (cmd) : PC_CMD_ERROR)

pc_cmd pc_proto_command(const pc_token *tokens, size_t ntokens)
{
    if (ntokens < 2 || tokens[0].length < 2)
        return PC_CMD_ERROR;
    const char *c = tokens[0].value;
    size_t n = ntokens;

    if (c[0] == 'm' && tokens[0].length == 2) {
        switch (c[1]) {
        case 'g': return PC_CMD_MG;
        case 's': return PC_CMD_MS;
        case 'd': return PC_CMD_MD;
        case 'n': return PC_CMD_MN;
        case 'a': return PC_CMD_MA;
        case 'e': return PC_CMD_ME;
        default: return PC_CMD_ERROR;
        }
    }
    switch (c[0]) {
    case 'g':
        if (n < 3)
            return PC_CMD_ERROR;
        if (IS(c, "get")) return PC_CMD_GET;
        if (IS(c, "gets")) return PC_CMD_GETS;
        if (IS(c, "gat")) return PC_CMD_GAT;
        if (IS(c, "gats")) return PC_CMD_GATS;
        return PC_CMD_ERROR;
    case 's':
        if (IS(c, "set")) return WANT(n == 6 || n == 7, PC_CMD_SET);
        if (IS(c, "stats")) return PC_CMD_STATS;
        if (IS(c, "shutdown")) return PC_CMD_SHUTDOWN;
        if (IS(c, "slabs")) return PC_CMD_OTHER;
        return PC_CMD_ERROR;
    case 'a':
        if (IS(c, "add")) return WANT(n == 6 || n == 7, PC_CMD_ADD);
        if (IS(c, "append")) return WANT(n == 6 || n == 7, PC_CMD_APPEND);
        return PC_CMD_ERROR;
    case 'c':
        if (IS(c, "cas")) return WANT(n == 7 || n == 8, PC_CMD_CAS);
        if (IS(c, "cache_memlimit")) return WANT(n == 3 || n == 4, PC_CMD_CACHE_MEMLIMIT);
        if (IS(c, "cluster")) return PC_CMD_EXTENSION;
        return PC_CMD_ERROR;
    case 'i':
        if (IS(c, "incr")) return WANT(n == 4 || n == 5, PC_CMD_INCR);
        return PC_CMD_ERROR;
    case 'd':
        if (IS(c, "delete")) return WANT(n >= 3 && n <= 5, PC_CMD_DELETE);
        if (IS(c, "decr")) return WANT(n == 4 || n == 5, PC_CMD_DECR);
        return PC_CMD_ERROR;
    case 't':
        if (IS(c, "touch")) return WANT(n == 4 || n == 5, PC_CMD_TOUCH);
        return PC_CMD_ERROR;
    default:
        break;
    }
    if (IS(c, "replace")) return WANT(n == 6 || n == 7, PC_CMD_REPLACE);
    if (IS(c, "prepend")) return WANT(n == 6 || n == 7, PC_CMD_PREPEND);
    if (IS(c, "bget")) return WANT(n >= 3, PC_CMD_GET);
    if (IS(c, "flush_all")) return WANT(n >= 2 && n <= 4, PC_CMD_FLUSH_ALL);
    if (IS(c, "version")) return PC_CMD_VERSION;
    if (IS(c, "quit")) return PC_CMD_QUIT;
    if (IS(c, "verbosity")) return WANT(n == 3 || n == 4, PC_CMD_VERBOSITY);
    if (IS(c, "lru_crawler") || IS(c, "watch")) return PC_CMD_OTHER;
    if (IS(c, "lru")) return WANT(n >= 3, PC_CMD_OTHER);
    if (IS(c, "lock") || IS(c, "unlock")) return PC_CMD_EXTENSION;
    /* tokens[ntokens - 2] is the last real token (ntokens >= 2 here). */
    if (tokens[n - 2].value != NULL && strncmp(tokens[n - 2].value, "HTTP/", 5) == 0)
        return PC_CMD_HTTP;
    return PC_CMD_ERROR;
}

/* The three converters follow memcached's util.c exactly: strtol's syntax (leading
 * whitespace, a sign), any whitespace may follow the digits, and negative input to the
 * unsigned forms is refused only when it wrapped to a huge value. */
int pc_strtol(const char *str, int32_t *out)
{
    char *endptr;
    errno = 0;
    *out = 0;
    long l = strtol(str, &endptr, 10);
    if (errno == ERANGE || str == endptr)
        return 0;
    if (isspace((unsigned char)*endptr) || (*endptr == '\0' && endptr != str)) {
        *out = (int32_t)l; /* memcached truncates: "set k 0 0 4294967297" stores 1 byte */
        return 1;
    }
    return 0;
}

int pc_strtoul(const char *str, uint32_t *out)
{
    char *endptr = NULL;
    *out = 0;
    errno = 0;
    unsigned long l = strtoul(str, &endptr, 10);
    if (errno == ERANGE || str == endptr)
        return 0;
    if (isspace((unsigned char)*endptr) || (*endptr == '\0' && endptr != str)) {
        if ((long)l < 0 && memchr(str, '-', (size_t)(endptr - str)) != NULL)
            return 0;
        *out = (uint32_t)l;
        return 1;
    }
    return 0;
}

int pc_strtoull(const char *str, uint64_t *out)
{
    char *endptr;
    errno = 0;
    *out = 0;
    unsigned long long ull = strtoull(str, &endptr, 10);
    if (errno == ERANGE || str == endptr)
        return 0;
    if (isspace((unsigned char)*endptr) || (*endptr == '\0' && endptr != str)) {
        if ((long long)ull < 0 && memchr(str, '-', (size_t)(endptr - str)) != NULL)
            return 0;
        *out = ull;
        return 1;
    }
    return 0;
}

int pc_meta_preparse(pc_token *tokens, size_t start, pc_meta_flags *of, const char **errstr)
{
    uint8_t seen[127] = {0};
    size_t ret;
    for (size_t i = start; tokens[i].length != 0; i++) {
        uint8_t o = (uint8_t)tokens[i].value[0];
        if (o >= 127 || seen[o] != 0) {
            *errstr = "CLIENT_ERROR duplicate flag";
            return -1;
        }
        seen[o] = 1;
        switch (o) {
        case 'b':
            ret = pc_base64_decode((unsigned char *)tokens[1].value, tokens[1].length,
                                   (unsigned char *)tokens[1].value, tokens[1].length);
            if (ret == 0) {
                *errstr = "CLIENT_ERROR error decoding key";
                of->has_error = 1;
            }
            tokens[1].length = ret;
            of->key_binary = 1;
            break;
        case 'N':
            of->locked = 1;
            of->vivify = 1;
            if (!pc_strtol(tokens[i].value + 1, &of->autoviv_exptime)) {
                *errstr = "CLIENT_ERROR bad token in command line format";
                of->has_error = 1;
            }
            break;
        case 'T':
            of->locked = 1;
            if (!pc_strtol(tokens[i].value + 1, &of->exptime)) {
                *errstr = "CLIENT_ERROR bad token in command line format";
                of->has_error = 1;
            } else {
                of->new_ttl = 1;
            }
            break;
        case 'R':
            of->locked = 1;
            if (!pc_strtol(tokens[i].value + 1, &of->recache_time)) {
                *errstr = "CLIENT_ERROR bad token in command line format";
                of->has_error = 1;
            }
            break;
        case 'l':
            of->la = 1;
            of->locked = 1;
            break;
        case 'O': case 'P': case 'L':
        case 'k': case 's': case 't': case 'c': case 'f':
            break;
        case 'v':
            of->value = 1;
            break;
        case 'h':
            of->locked = 1;
            break;
        case 'u':
            of->no_update = 1;
            break;
        case 'q':
            of->no_reply = 1;
            break;
        case 'F':
            if (!pc_strtoul(tokens[i].value + 1, &of->client_flags))
                of->has_error = 1;
            break;
        case 'C':
            if (!pc_strtoull(tokens[i].value + 1, &of->req_cas_id)) {
                *errstr = "CLIENT_ERROR bad token in command line format";
                of->has_error = 1;
            } else {
                of->has_cas = 1;
            }
            break;
        case 'M':
            if (tokens[i].length != 2) {
                *errstr = "CLIENT_ERROR incorrect length for M token";
                of->has_error = 1;
            } else {
                of->mode = tokens[i].value[1];
            }
            break;
        case 'J':
            if (!pc_strtoull(tokens[i].value + 1, &of->initial)) {
                *errstr = "CLIENT_ERROR invalid numeric initial value";
                of->has_error = 1;
            }
            break;
        case 'D':
            if (!pc_strtoull(tokens[i].value + 1, &of->delta)) {
                *errstr = "CLIENT_ERROR invalid numeric delta value";
                of->has_error = 1;
            }
            break;
        case 'I':
            of->set_stale = 1;
            break;
        case 'E':
            if (!of->allow_version) {
                *errstr = "CLIENT_ERROR invalid flag";
                return -1;
            }
            if (!pc_strtoull(tokens[i].value + 1, &of->version) || of->version == 0) {
                *errstr = "CLIENT_ERROR bad token in command line format";
                of->has_error = 1;
            } else {
                of->has_version = 1;
            }
            break;
        default:
            *errstr = "CLIENT_ERROR invalid flag";
            return -1;
        }
    }
    return of->has_error ? -1 : 0;
}

size_t pc_u64toa(uint64_t v, char *p)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

static const unsigned char b64_table[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t pc_base64_encode(const unsigned char *src, size_t len, unsigned char *out,
                        size_t out_len)
{
    size_t olen = len * 4 / 3 + 4;
    if (olen < len || olen > out_len)
        return 0;
    const unsigned char *end = src + len, *in = src;
    unsigned char *pos = out;
    while (end - in >= 3) {
        *pos++ = b64_table[in[0] >> 2];
        *pos++ = b64_table[((in[0] & 0x03) << 4) | (in[1] >> 4)];
        *pos++ = b64_table[((in[1] & 0x0f) << 2) | (in[2] >> 6)];
        *pos++ = b64_table[in[2] & 0x3f];
        in += 3;
    }
    if (end - in) {
        *pos++ = b64_table[in[0] >> 2];
        if (end - in == 1) {
            *pos++ = b64_table[(in[0] & 0x03) << 4];
            *pos++ = '=';
        } else {
            *pos++ = b64_table[((in[0] & 0x03) << 4) | (in[1] >> 4)];
            *pos++ = b64_table[(in[1] & 0x0f) << 2];
        }
        *pos++ = '=';
    }
    return (size_t)(pos - out);
}

/* Characters outside the alphabet are skipped, as in memcached's decoder. */
size_t pc_base64_decode(const unsigned char *src, size_t len, unsigned char *out,
                        size_t out_len)
{
    unsigned char dtable[256], block[4], tmp;
    size_t count = 0;
    int pad = 0;

    memset(dtable, 0x80, 256);
    for (size_t i = 0; i < 64; i++)
        dtable[b64_table[i]] = (unsigned char)i;
    dtable['='] = 0;

    for (size_t i = 0; i < len; i++)
        if (dtable[src[i]] != 0x80)
            count++;
    if (count == 0 || count % 4)
        return 0;
    if (count / 4 * 3 > out_len)
        return 0;

    unsigned char *pos = out;
    count = 0;
    for (size_t i = 0; i < len; i++) {
        tmp = dtable[src[i]];
        if (tmp == 0x80)
            continue;
        if (src[i] == '=')
            pad++;
        block[count++] = tmp;
        if (count == 4) {
            *pos++ = (unsigned char)((block[0] << 2) | (block[1] >> 4));
            *pos++ = (unsigned char)((block[1] << 4) | (block[2] >> 2));
            *pos++ = (unsigned char)((block[2] << 6) | block[3]);
            count = 0;
            if (pad) {
                if (pad == 1)
                    pos--;
                else if (pad == 2)
                    pos -= 2;
                else
                    return 0; /* invalid padding */
                break;
            }
        }
    }
    return (size_t)(pos - out);
}

unsigned pc_proto_slab_class(size_t ntotal, size_t item_size_max)
{
    const double factor = 1.25;
    size_t chunk_max = item_size_max / 2;
    unsigned size = 96; /* sizeof(item) 48 + chunk_size 48 */
    unsigned i = 0;
    while (++i < 63) {
        if (size >= chunk_max / factor)
            break;
        if (size % 8)
            size += 8 - (size % 8);
        if (ntotal <= size)
            return i;
        size = (unsigned)(size * factor);
    }
    return i;
}
