/* proto_loop: drives csrc/pc_proto's tokenizer over a buffer of request lines, for
 * bench/micro/test_tokenizer.py (built there with the release flags, called through ctypes
 * once per many passes so the call overhead does not count). */
#include <stdlib.h>
#include <string.h>

#include "pc_proto.h"

/* Tokenizes every line of buf[0..len) `passes` times, as the connection does: find the line,
 * terminate it, split it, classify it, and read the flags of meta commands. Storage-command
 * data blocks are skipped by their length token. Returns the requests seen (never 0 for a
 * non-empty buffer, so the work cannot be optimised away), or -1 on a malformed buffer. */
long pcb_tokenize_passes(const char *buf, size_t len, long passes)
{
    char *scratch = malloc(len + 1);
    if (!scratch)
        return -1;
    long seen = 0;
    for (long p = 0; p < passes; p++) {
        memcpy(scratch, buf, len);  /* the tokenizer writes NULs in place */
        size_t off = 0;
        while (off < len) {
            size_t line_end;
            if (pc_proto_find_line(scratch + off, len - off, &line_end) != 1)
                break;
            pc_proto_terminate(scratch + off, line_end);
            pc_token tokens[PC_MAX_TOKENS];
            size_t ntokens = pc_tokenize(scratch + off, tokens, PC_MAX_TOKENS);
            pc_cmd cmd = pc_proto_command(tokens, ntokens);
            size_t data = 0;
            if (cmd == PC_CMD_MG || cmd == PC_CMD_MS) {
                pc_meta_flags of;
                const char *err = NULL;
                size_t start = cmd == PC_CMD_MS ? 3 : 2;
                if (pc_meta_preparse(tokens, start, &of, &err) != 0) {
                    free(scratch);
                    return -1;
                }
                if (cmd == PC_CMD_MS) {
                    uint32_t n;
                    if (!pc_strtoul(tokens[2].value, &n)) {
                        free(scratch);
                        return -1;
                    }
                    data = (size_t)n + 2;
                }
            } else if (cmd == PC_CMD_SET) {
                uint32_t flags, n;
                int32_t exptime;
                if (!pc_strtoul(tokens[2].value, &flags) || !pc_strtol(tokens[3].value, &exptime)
                    || !pc_strtoul(tokens[4].value, &n)) {
                    free(scratch);
                    return -1;
                }
                data = (size_t)n + 2;
            } else if (cmd == PC_CMD_ERROR) {
                free(scratch);
                return -1;
            }
            off += line_end + 1 + data;
            seen++;
        }
    }
    free(scratch);
    return seen;
}
