/*
 * peers.h - the peer implementations (ZeroMQ, nng) for the bench engine.
 */
#ifndef IPK_BENCH_PEERS_H
#define IPK_BENCH_PEERS_H

#include "bench.h"

enum peer_transport { PEER_IPC, PEER_TCP };

extern const bench_ops bench_ops_zmq, bench_ops_nng;

#endif
