/*
 * peers.c - ipckit-bench-peers: ipckit beside ZeroMQ and nng on their ipc (Unix socket) and tcp
 * transports, by the same engine and method as `ipckit bench` (which runs this program for
 * --peers). Every option of `ipckit bench` applies.
 */
#include <stdio.h>
#include <string.h>

#include "peers.h"

static int peers_add(bench_list *l, const char *tmpdir)
{
    static const struct {
        const bench_ops *ops;
        const char *label, *mech;
        int topo;
    } t[] = {
        {&bench_ops_zmq, "zmq ipc", "unix", PEER_IPC},
        {&bench_ops_nng, "nng ipc", "unix", PEER_IPC},
        {&bench_ops_zmq, "zmq tcp", "tcp", PEER_TCP},
        {&bench_ops_nng, "nng tcp", "tcp", PEER_TCP},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bench_spec *s = bench_list_add(l, t[i].ops, t[i].label, t[i].mech);
        if (s == NULL)
            return -1;
        s->topo = t[i].topo;
        if (t[i].topo == PEER_IPC)
            snprintf(s->url, sizeof s->url, "ipc://%s/%s.ipc", tmpdir, t[i].ops->impl);
        else
            snprintf(s->url, sizeof s->url, "tcp://127.0.0.1");
    }
    return 0;
}

int main(int argc, char **argv)
{
    char *av[argc + 2];
    int n = 0, have = 0;
    for (int i = 0; i < argc; i++)
        have |= strcmp(argv[i], "--peers") == 0;
    av[n++] = argv[0];
    if (!have)
        av[n++] = "--peers";
    for (int i = 1; i < argc; i++)
        av[n++] = argv[i];
    av[n] = NULL;
    return bench_main("ipckit bench --peers", n, av, peers_add);
}
