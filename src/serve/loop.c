/*
 * loop.c - how a worker waits: epoll, level-triggered, behind five small calls, so that the
 * library's poller (which also waits on channels without a descriptor) can replace it here
 * without touching worker.c.
 */
#include "server.h"

#include <errno.h>
#include <sys/epoll.h>

static uint32_t to_epoll(unsigned ev)
{
    return ((ev & SRV_IN) ? EPOLLIN : 0u) | ((ev & SRV_OUT) ? EPOLLOUT : 0u) |
           ((ev & SRV_EXCL) ? EPOLLEXCLUSIVE : 0u);
}

int srv_loop_new(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    return ep < 0 ? -errno : ep;
}

int srv_loop_add(int loop, int fd, unsigned events, void *ptr)
{
    struct epoll_event e = {.events = to_epoll(events), .data.ptr = ptr};
    return epoll_ctl(loop, EPOLL_CTL_ADD, fd, &e) == 0 ? 0 : -errno;
}

int srv_loop_mod(int loop, int fd, unsigned events, void *ptr)
{
    struct epoll_event e = {.events = to_epoll(events), .data.ptr = ptr};
    return epoll_ctl(loop, EPOLL_CTL_MOD, fd, &e) == 0 ? 0 : -errno;
}

int srv_loop_del(int loop, int fd)
{
    return epoll_ctl(loop, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : -errno;
}

int srv_loop_wait(int loop, srv_event *ev, int n, int timeout_ms)
{
    struct epoll_event e[64];
    int r = epoll_wait(loop, e, n < 64 ? n : 64, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < r; i++) {
        ev[i].ptr = e[i].data.ptr;
        ev[i].events = ((e[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? SRV_IN : 0u) |
                       ((e[i].events & EPOLLOUT) ? SRV_OUT : 0u);
    }
    return r;
}
