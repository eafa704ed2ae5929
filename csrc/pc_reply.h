/* pc_reply: replies read back from a peer link: where one ends, and a meta get answer
 * re-spoken as the text protocol's VALUE line. */
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

/* Maps an `mg <key> v f [c]` reply to what `get`/`gets` answer for that key: a hit
 * ("VA <n> f<flags> [c<cas>]", value) appends "VALUE <key> <flags> <n>[ <cas>]\r\n<value>\r\n"
 * to out and returns 1; a miss ("EN") appends nothing and returns 0; anything else (an error
 * line) appends nothing and returns -1. */
int pc_reply_value(const char *frame, size_t len, const char *key, size_t nkey, int with_cas,
                   pc_wbuf *out);

#endif
