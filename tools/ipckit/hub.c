/*
 * hub.c - several addresses on one ipk_poller: `ipckit recv URL...` and `ipckit relay` take
 * their messages from here. Each address is an end: a channel, or a connection-oriented
 * listener whose peers (as many as connect) join the poller as they are accepted. hub_next()
 * returns the next message from any end, in slices (cli_wait) so that a signal or a closed
 * standard output ends the command through its normal close path.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hub.h"

#define HUB_EVENTS 32

int hub_init(hub *h, const char *cmd, int nmax)
{
    memset(h, 0, sizeof *h);
    h->cmd = cmd;
    if ((h->end = calloc((size_t)nmax, sizeof *h->end)) == NULL)
        return -ENOMEM;
    return ipk_poller_new(&h->p);
}

int hub_add(hub *h, const char *url, const ipk_opts *o, int listen)
{
    int i = h->n;
    hub_end *e = &h->end[i];
    e->url = url;
    e->reg.end = e->lreg.end = i;
    e->lreg.listener = 1;
    h->bad = url;
    ipk_chan *c = NULL;
    int r = cli_open(url, o, listen, &e->l, &c);
    if (r != 0)
        return r;
    h->n++;
    h->live++;
    if (e->l != NULL && (r = ipk_poller_add(h->p, e->l, IPK_POLLIN, &e->lreg)) != 0)
        return r;
    if (c != NULL && (r = hub_adopt(h, i, c)) != 0) {
        ipk_close(c);
        return r;
    }
    h->bad = NULL;
    return i;
}

int hub_open(hub *h, const char *cmd, char *const *urls, int n, const ipk_opts *o, int listen)
{
    int r = hub_init(h, cmd, n);
    for (int i = 0; i < n && r >= 0; i++)
        r = hub_add(h, urls[i], o, listen);
    return r < 0 ? r : 0;
}

int hub_adopt(hub *h, int i, ipk_chan *c)
{
    hub_end *e = &h->end[i];
    ipk_chan **v = realloc(e->c, (e->nc + 1) * sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    e->c = v;
    e->c[e->nc++] = c;
    return ipk_poller_add(h->p, c, IPK_POLLIN, &e->reg);
}

int hub_release(hub *h, int i, ipk_chan *c)
{
    hub_end *e = &h->end[i];
    for (size_t k = 0; k < e->nc; k++)
        if (e->c[k] == c) {
            e->c[k] = e->c[--e->nc];
            ipk_poller_del(h->p, c);
            return 1;
        }
    return 0;
}

int hub_has(const hub *h, const ipk_chan *c)
{
    for (int i = 0; i < h->n; i++)
        for (size_t k = 0; k < h->end[i].nc; k++)
            if (h->end[i].c[k] == c)
                return 1;
    return 0;
}

/* Takes c out of end i (it is closed; its close status goes into h->rc). */
static void hub_drop(hub *h, int i, ipk_chan *c)
{
    hub_end *e = &h->end[i];
    for (size_t k = 0; k < e->nc; k++)
        if (e->c[k] == c) {
            e->c[k] = e->c[--e->nc];
            break;
        }
    int r = cli_close(h->cmd, c);
    if (r != CLI_OK && h->rc == CLI_OK)
        h->rc = r;
    h->dropped++;
    /* An end with neither a listener nor a channel left is done. */
    if (e->l == NULL && e->nc == 0)
        h->live--;
}

static long hub_wait_op(void *arg, int slice_ms)
{
    hub *h = arg;
    int n = ipk_poller_wait(h->p, h->ev, HUB_EVENTS, slice_ms);
    if (n == -EAGAIN)
        return IPK_ETIMEDOUT;
    return n;
}

long hub_next(hub *h, cli_buf *b, ipk_msginfo *mi, int *end, ipk_chan **from, int timeout_ms)
{
    if (h->ev == NULL && (h->ev = calloc(HUB_EVENTS, sizeof *h->ev)) == NULL)
        return -ENOMEM;
    for (;;) {
        /* What the last wait reported, one event at a time: a channel is read until it has
         * nothing more right now, so no message waits behind a busy neighbour for long. */
        while (h->next < h->nev) {
            ipk_pollev *ev = &h->ev[h->next];
            hub_reg *g = ev->user;
            hub_end *e = &h->end[g->end];
            if (g->listener) {
                h->next++;
                ipk_chan *c = NULL;
                int r = ipk_accept(e->l, &c, 0);
                if (r == 0 && (r = hub_adopt(h, g->end, c)) != 0)
                    hub_drop(h, g->end, c);
                if (r != 0 && r != -EAGAIN && r != IPK_ETIMEDOUT)
                    return r;
                continue;
            }
            long n = h->before_take ? h->before_take(h->arg, g->end) : 0;
            if (n != 0)
                return n;
            n = cli_recv(ev->chan, b, mi, 0);
            if (n >= 0) {
                *end = g->end;
                *from = ev->chan;
                return n;
            }
            h->next++;
            if (n == -EAGAIN)
                continue;
            if (n == IPK_EOF || n == -ECONNRESET || n == -EPIPE || n == IPK_ECLOSED) {
                hub_drop(h, g->end, ev->chan); /* that peer (or source) is done */
                if (h->live == 0)
                    return IPK_EOF;
                continue;
            }
            return n;
        }
        if (h->live == 0)
            return IPK_EOF;
        long n = cli_wait(h->cmd, hub_wait_op, h, timeout_ms);
        if (n < 0)
            return n;
        h->nev = (int)n;
        h->next = 0;
    }
}

int hub_close(hub *h)
{
    int rc = h->rc;
    if (h->end == NULL)
        return rc;
    for (int i = 0; i < h->n; i++) {
        hub_end *e = &h->end[i];
        for (size_t k = 0; k < e->nc; k++) {
            int r = cli_close(h->cmd, e->c[k]);
            if (r != CLI_OK && rc == CLI_OK)
                rc = r;
        }
        free(e->c);
        int r = cli_close(h->cmd, e->l);
        if (r != CLI_OK && rc == CLI_OK)
            rc = r;
    }
    ipk_poller_free(h->p);
    free(h->end);
    free(h->ev);
    return rc;
}
