# A command's tokens, as the connection and the coordinator read them (included by _conn.pyx):
# which commands are keyed, the key's hash as the store will see it, a meta flag, and the
# line put back as it came for a command read again.

cdef bint has_flag(pc_cmd cmd, pc_token *tokens, size_t ntokens, char flag) noexcept:
    """A meta command's flag is among its tokens (no text command has flags)."""
    cdef size_t i
    if cmd < PC_CMD_MG:
        return False
    for i in range(3 if cmd == PC_CMD_MS else 2, ntokens - 1):
        if tokens[i].value[0] == flag:
            return True
    return False


cdef void _restore_line(char *line, size_t line_end, pc_token *tokens,
                        size_t ntokens) noexcept:
    """Undoes pc_proto_terminate and pc_tokenize on a line: the NUL each put at a token's
    end becomes the space (or line end) it replaced."""
    cdef size_t i, at
    cdef size_t el = line_end - 1 if line_end > 1 and line[line_end - 1] == b'\r' else line_end
    for i in range(ntokens - 1):
        at = <size_t>(tokens[i].value + tokens[i].length - line)
        if at < el:
            line[at] = b' '
    line[el] = b'\r' if el < line_end else b'\n'


cdef inline bint _keyed(pc_cmd cmd) noexcept:
    return (PC_CMD_SET <= cmd <= PC_CMD_TOUCH) or (PC_CMD_MG <= cmd <= PC_CMD_MA) \
        or cmd == PC_CMD_ME


cdef bint key_hash(pc_cmd cmd, pc_token *tokens, size_t ntokens, uint32_t *hv) noexcept:
    """Sets *hv to the hash of the command's key as the store will see it (a meta 'b' key
    decoded). False when the command will not use the key (it answers an error instead)."""
    cdef unsigned char decoded[256]
    cdef size_t i, n, start
    cdef pc_token *key = &tokens[1]
    if key.length > KEY_MAX:
        return False
    if cmd == PC_CMD_ME:
        if ntokens >= 4 and tokens[2].length == 1 and tokens[2].value[0] == b'b':
            return _decoded_hash(key, decoded, hv)
    elif PC_CMD_MG <= cmd <= PC_CMD_MA:
        start = 3 if cmd == PC_CMD_MS else 2
        for i in range(start, ntokens - 1):
            if tokens[i].value[0] == b'b':
                return _decoded_hash(key, decoded, hv)
    hv[0] = pc_hash(key.value, key.length, 0)
    return True


cdef inline bint _decoded_hash(pc_token *key, unsigned char *buf, uint32_t *hv) noexcept:
    cdef size_t n = pc_base64_decode(<const unsigned char *>key.value, key.length, buf, 256)
    if n == 0:
        return False
    hv[0] = pc_hash(buf, n, 0)
    return True


cdef extern from *:
    """
    static size_t pc_base64_decode_key(char *key, size_t nkey) {
        return pc_base64_decode((const unsigned char *)key, nkey, (unsigned char *)key, nkey);
    }
    """
    size_t pc_base64_decode_key(char *key, size_t nkey)
