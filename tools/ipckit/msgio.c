/*
 * msgio.c - messages in and out of the standard streams, for send, recv and chat: the output
 * formats of a received message, and the splitter that cuts standard input into messages
 * (lines, frames, or the whole input) whether it is read blocking or as poll(2) says.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

static const char *const cli_fmt_names[] = {"text", "hex", "json", "raw", "framed"};

int cli_parse_fmt(const char *s, enum cli_fmt *f)
{
    for (int i = 0; i < (int)(sizeof cli_fmt_names / sizeof cli_fmt_names[0]); i++)
        if (strcmp(s, cli_fmt_names[i]) == 0) {
            *f = (enum cli_fmt)i;
            return 0;
        }
    return -1;
}

void cli_print_msg(enum cli_fmt fmt, const unsigned char *p, size_t n, const ipk_msginfo *mi,
                   const char *src)
{
    /* Several sources: a text or hex line starts with "[URL] ". */
    if (src != NULL && (fmt == CLI_FMT_TEXT || fmt == CLI_FMT_HEX))
        printf("[%s] ", src);
    switch (fmt) {
    case CLI_FMT_RAW:
        fwrite(p, 1, n, stdout);
        break;
    case CLI_FMT_FRAMED: { /* what send -s framed reads: boundaries survive a pipe */
        unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                              (unsigned char)(n >> 8), (unsigned char)n};
        fwrite(h, 1, 4, stdout);
        fwrite(p, 1, n, stdout);
        break;
    }
    case CLI_FMT_HEX:
        for (size_t i = 0; i < n; i++)
            printf("%02x", p[i]);
        putchar('\n');
        break;
    case CLI_FMT_JSON: {
        json_w w;
        json_init(&w, stdout);
        json_obj(&w);
        if (src != NULL) {
            json_key(&w, "source");
            json_str(&w, src);
        }
        static const char *const keys[] = {"len", "prio", "type", "signo", "pid", "uid"};
        const long long v[] = {(long long)n, mi->prio,
                               mi->type,     mi->signo,
                               (int)mi->pid, mi->uid == (uid_t)-1 ? -1LL : (long long)mi->uid};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_key(&w, keys[i]);
            json_int(&w, v[i]);
        }
        json_bytes(&w, "data", p, n);
        json_end(&w);
        putchar('\n');
        break;
    }
    case CLI_FMT_TEXT:
        fwrite(p, 1, n, stdout);
        putchar('\n');
        break;
    }
}

/* ---- standard input cut into messages ---- */

int cli_parse_in_mode(const char *s, enum cli_in_mode *m)
{
    static const char *const names[] = {"lines", "whole", "framed"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *m = (enum cli_in_mode)i;
            return 0;
        }
    return -1;
}

void cli_in_init(cli_in *in, int fd, enum cli_in_mode mode)
{
    *in = (cli_in){.fd = fd, .mode = mode};
}

void cli_in_free(cli_in *in)
{
    free(in->buf);
    in->buf = NULL;
}

int cli_in_fill(cli_in *in)
{
    if (in->off > 0 && in->off == in->len)
        in->off = in->len = 0;
    if (in->len == in->cap || (in->off > 0 && in->cap - in->len < 4096)) {
        if (in->off > 0) { /* move the unread part down before growing */
            memmove(in->buf, in->buf + in->off, in->len - in->off);
            in->len -= in->off;
            in->off = 0;
        }
        if (in->len == in->cap) {
            size_t cap = in->cap ? in->cap * 2 : 65536;
            char *b = realloc(in->buf, cap);
            if (b == NULL)
                return -ENOMEM;
            in->buf = b;
            in->cap = cap;
        }
    }
    ssize_t k = read(in->fd, in->buf + in->len, in->cap - in->len);
    if (k < 0)
        return -errno;
    if (k == 0)
        in->eof = 1;
    in->len += (size_t)k;
    return (int)(k > 0);
}

int cli_in_next(cli_in *in, const char **p, size_t *n)
{
    const char *b = in->buf + in->off;
    size_t have = in->len - in->off;
    if (in->mode == CLI_IN_WHOLE) {
        if (!in->eof || in->done)
            return 0;
        in->done = 1;
        *p = b ? b : "";
        *n = have;
        in->off = in->len;
        return 1;
    }
    if (in->mode == CLI_IN_FRAMED) {
        if (have < 4)
            return in->eof && have ? CLI_IN_CUT : 0;
        const unsigned char *h = (const unsigned char *)b;
        size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
        if (have - 4 < len)
            return in->eof ? CLI_IN_CUT : 0;
        *p = b + 4;
        *n = len;
        in->off += 4 + len;
        return 1;
    }
    const char *nl = have ? memchr(b, '\n', have) : NULL;
    if (nl == NULL) {
        if (!in->eof || have == 0)
            return 0;
        nl = b + have; /* the last line, without a newline */
    }
    *p = b;
    *n = (size_t)(nl - b);
    in->off += *n + (nl < b + have);
    return 1;
}

const char *cli_in_cut_msg(const cli_in *in)
{
    return in->len - in->off < 4 ? "standard input ended inside a frame header"
                                 : "standard input ended inside a frame";
}
