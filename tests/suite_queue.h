/*
 * suite_queue.h - the conformance suite of the message-queue family: mq:, sysv:, shm: (rings),
 * file: (the log) and signal:, in the style of nng's nuts.h. A transport describes itself once
 * in a qs_kind (how to make a unique address, how to make a queue that fills, what its errors
 * say, what it promises about consumers and removal) and instantiates the groups of cases that
 * apply to it with one macro each:
 *
 *     static qs_kind mq = {.scheme = "mq", ...};
 *     IPKT_MAIN(QS_MESSAGES("mq", &mq), QS_FULL("mq", &mq), QS_CONSUMERS("mq", &mq),
 *               QS_OWNED("mq", &mq), cmocka_unit_test(t_priorities), ...)
 *
 * Every case runs between real processes: the test process listens (the listener owns the
 * object), children dial. Children cannot use cmocka's asserts, so they check with IPKT_CHECK()
 * and exit 1. The cases live in suite_queue.c.
 */
#ifndef IPKT_SUITE_QUEUE_H
#define IPKT_SUITE_QUEUE_H

#include "harness.h"

/* What several consumers of one object see. */
enum qs_consumers {
    QS_SHARE, /* each message goes to exactly one of them (a queue) */
    QS_EACH,  /* each of them sees every message (a log: every reader has its own offset) */
    QS_SINK,  /* only the listener receives; dialers only send (signal:) */
};

/* Fields left out mean: typical 64, drained -EAGAIN, queries (sized, sized_dial, multi, keep0)
 * empty, *_says and hooks NULL (nothing to check or do). */
typedef struct qs_kind {
    const char *scheme;
    /* Writes a fresh, unique address without a query into url and journals the object it will
     * name (a path, an mq or shm name) so that it is removed even when the test dies. */
    void (*fresh)(char *url, size_t cap);
    /* Optional: called after every successful listen, with small = 1 for a queue meant to fill
     * (QS_FULL). Journals what exists only now (sysv: the queue id) and shrinks what no option
     * sets (sysv: msg_qbytes). */
    void (*created)(ipk_chan *l, int small);
    /* Dialers take the listener's ipk_addr() (signal:self -> signal:PID?sig=...), not the base
     * address from fresh(). */
    int by_addr;
    enum qs_consumers consumers;

    /* The length of an ordinary message every default channel carries (the payloads of the
     * order cases are 4..typical bytes; at most 255). */
    size_t typical;
    /* The largest message: listen with `sized`, dial with `sized_dial`; largest() is its size
     * there, and one byte more is IPK_EMSGSIZE saying over_fmt (printf: largest + 1, largest). */
    const char *sized, *sized_dial;
    size_t (*largest)(void);
    const char *over_fmt;
    /* A receive into a buffer too small is IPK_EMSGSIZE saying small_fmt (printf: length, cap),
     * and the message stays for the next receive. needed_bound: ipk_needed() is a size that
     * holds any message (sysv: the kernel does not say the size), not the exact size, and
     * small_fmt takes the cap only. */
    const char *small_fmt;
    int needed_bound;
    /* That message is held in the channel meanwhile: ipk_pending() says 1 (mq:, signal:). */
    int pending_held;
    /* recv(0) on an empty channel says empty_says (NULL: no detail is promised). */
    const char *empty_says;
    /* After every producer closed and everything was received: -EAGAIN, or IPK_EOF (shm:; the
     * cases with several producers keep one attached in the test process until all are done,
     * so that the end cannot come between one producer's close and the next one's start). */
    long drained;
    /* The query that lets several producers (and consumers) attach ("" when always allowed). */
    const char *multi;
    /* ipk_fd() is IPK_ENOTSUP saying this; NULL: it polls readable when a message waits. */
    const char *nofd_says;
    /* Optional: checks the msginfo of a message from the default sender `sender`. */
    int (*info_ok)(const ipk_msginfo *mi, pid_t sender);

    /* QS_FULL: the query of a queue that fills (listen), fill_len the size of the messages that
     * fill it (a consumer that takes one makes room for one more), full_says what a send to the
     * full queue says (NULL: no detail promised). */
    const char *small;
    size_t fill_len;
    const char *full_says;

    /* QS_OWNED: dialing an object that does not exist is -ENOENT saying missing_says; "nobody"
     * dialing a 0600 object is -EACCES saying eacces_says; mode_of() reads the permission bits
     * of the object a listener created; keep0 is the query of an owner that removes its object
     * on close ("" where that is the default). mode_of may be NULL where the object has no
     * mode to read (mq: when /dev/mqueue is not mounted). */
    const char *missing_says, *eacces_says, *keep0;
    int (*mode_of)(ipk_chan *l);
    /* QS_REMOVED: a receiver whose object its owner removed sees IPK_EOF saying this. */
    const char *removed_says;
} qs_kind;

/* Every transport of the family. */
void qs_sizes(void **state);
void qs_order(void **state);
void qs_producers(void **state);
void qs_late_consumer(void **state);
void qs_killed_producer(void **state);
void qs_timeouts_empty(void **state);
void qs_storm_recv(void **state);
void qs_small_buffer(void **state);
void qs_poll(void **state);
void qs_options(void **state);
/* Queues that fill up. */
void qs_timeouts_full(void **state);
void qs_storm_send(void **state);
/* Several consumers, and consumers that die. */
void qs_consumers(void **state);
void qs_killed_consumer(void **state);
/* Objects with an owner, a name and a mode. */
void qs_owner_removes(void **state);
void qs_permissions(void **state);
/* A receiver sees the removal of its object. */
void qs_removed(void **state);

/* Waits in a receive on an empty channel at url for timeout_ms while a child sends SIGUSR1
 * (without SA_RESTART) to this process: asserts IPK_ETIMEDOUT, not before the deadline. For
 * modes of a transport the suite does not instantiate (shm:'s mode=segment). */
void qs_storm_recv_at(const char *url, int timeout_ms);

#define QS_CASE(fn, tag, kind)                                                                     \
    {                                                                                              \
#fn "/" tag, fn, NULL, NULL, (void *)(kind)                                                \
    }
#define QS_MESSAGES(tag, kind)                                                                     \
    QS_CASE(qs_sizes, tag, kind), QS_CASE(qs_order, tag, kind), QS_CASE(qs_producers, tag, kind),  \
        QS_CASE(qs_late_consumer, tag, kind), QS_CASE(qs_killed_producer, tag, kind),              \
        QS_CASE(qs_timeouts_empty, tag, kind), QS_CASE(qs_storm_recv, tag, kind),                  \
        QS_CASE(qs_small_buffer, tag, kind), QS_CASE(qs_poll, tag, kind),                          \
        QS_CASE(qs_options, tag, kind)
#define QS_FULL(tag, kind) QS_CASE(qs_timeouts_full, tag, kind), QS_CASE(qs_storm_send, tag, kind)
#define QS_CONSUMERS(tag, kind)                                                                    \
    QS_CASE(qs_consumers, tag, kind), QS_CASE(qs_killed_consumer, tag, kind)
#define QS_OWNED(tag, kind)   QS_CASE(qs_owner_removes, tag, kind), QS_CASE(qs_permissions, tag, kind)
#define QS_REMOVED(tag, kind) QS_CASE(qs_removed, tag, kind)

#endif
