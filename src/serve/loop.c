/*
 * loop.c - how a worker waits: one epoll set for the descriptors the worker handles itself (the
 * shared listening sockets, its connections, its signalfd) with the library's poller nested in
 * it for the channels (queues of every kind: mq, shm, sysv, file), so that a worker serving a
 * shared-memory ring or a System V queue beside its sockets sleeps until something happens
 * instead of trying the queues on a tick.
 *
 * The poller's one descriptor (ipk_poller_fd) sits in the epoll set; when it is readable the
 * wait asks the poller once with timeout 0 and reports the channels it names. Once a wait of
 * timeout 0 finds nothing (-EAGAIN) the poller is armed and its descriptor turns readable when a
 * channel does; while it does find something it keeps its descriptor readable, so a channel
 * still holding messages is reported again on the next round (level-triggered).
 *
 * Channels that nothing signals (System V queues, shm segments) are not put in the poller: a
 * nested poller looks at them only on a timer of its own, which does not back off while nested
 * (the worker would wake thousands of times a second); the worker tries them on its own tick
 * (worker.c), every 5 ms, the bound the poller documents for them.
 */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static uint32_t to_epoll(unsigned ev)
{
    return ((ev & SRV_IN) ? EPOLLIN : 0u) | ((ev & SRV_OUT) ? EPOLLOUT : 0u) |
           ((ev & SRV_EXCL) ? EPOLLEXCLUSIVE : 0u) | ((ev & SRV_EDGE) ? EPOLLET : 0u);
}

int srv_loop_new(srv_loop *l)
{
    memset(l, 0, sizeof *l);
    l->pfd = -1;
    if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -errno;
    int r = ipk_poller_new(&l->p);
    if (r != 0) {
        close(l->ep);
        l->ep = -1;
    }
    return r;
}

void srv_loop_free(srv_loop *l)
{
    ipk_poller_free(l->p);
    if (l->ep >= 0)
        close(l->ep);
    l->p = NULL;
    l->ep = l->pfd = -1;
}

int srv_loop_add(srv_loop *l, int fd, unsigned events, void *ptr)
{
    struct epoll_event e = {.events = to_epoll(events), .data.ptr = ptr};
    return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) == 0 ? 0 : -errno;
}

int srv_loop_mod(srv_loop *l, int fd, unsigned events, void *ptr)
{
    struct epoll_event e = {.events = to_epoll(events), .data.ptr = ptr};
    return epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &e) == 0 ? 0 : -errno;
}

int srv_loop_del(srv_loop *l, int fd)
{
    return epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : -errno;
}

int srv_loop_add_chan(srv_loop *l, ipk_chan *c, unsigned events, void *ptr)
{
    if (l->pfd < 0) { /* the poller joins the set with its first channel */
        int fd = ipk_poller_fd(l->p);
        if (fd < 0)
            return fd;
        int r = srv_loop_add(l, fd, SRV_IN, &l->pfd);
        if (r != 0)
            return r;
        l->pfd = fd;
    }
    int r = ipk_poller_add(
        l->p, c, ((events & SRV_IN) ? IPK_POLLIN : 0u) | ((events & SRV_OUT) ? IPK_POLLOUT : 0u),
        ptr);
    if (r == 0)
        l->fresh = 1;
    return r;
}

int srv_loop_del_chan(srv_loop *l, ipk_chan *c)
{
    return ipk_poller_del(l->p, c);
}

int srv_loop_wait(srv_loop *l, srv_event *ev, int n, int timeout_ms)
{
    /* A channel that joined a nested poller is armed by the poller's next wait only (its
     * descriptor does not turn readable for it): ask before sleeping. */
    int ask = l->fresh;
    if (l->fresh)
        timeout_ms = 0;
    struct epoll_event e[64];
    int r = epoll_wait(l->ep, e, n < 64 ? n : 64, timeout_ms);
    if (r < 0 && errno != EINTR)
        return -errno;
    int k = 0;
    for (int i = 0; i < r; i++) {
        if (e[i].data.ptr == &l->pfd) {
            ask = 1;
            continue;
        }
        ev[k].ptr = e[i].data.ptr;
        ev[k++].events = ((e[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? SRV_IN : 0u) |
                         ((e[i].events & EPOLLOUT) ? SRV_OUT : 0u);
    }
    if (ask && k < n) {
        l->fresh = 0;
        ipk_pollev pe[64];
        int m = ipk_poller_wait(l->p, pe, n - k < 64 ? n - k : 64, 0);
        if (m < 0 && m != -EAGAIN)
            return m;
        for (int i = 0; i < m; i++) {
            ev[k].ptr = pe[i].user;
            ev[k++].events = ((pe[i].events & (IPK_POLLIN | IPK_POLLHUP)) ? SRV_IN : 0u) |
                             ((pe[i].events & IPK_POLLOUT) ? SRV_OUT : 0u);
        }
    }
    return k;
}
