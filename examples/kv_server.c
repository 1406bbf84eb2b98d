/*
 * kv_server.c - a small key-value service on the server component (ipckit/serve.h): a master
 * and N worker processes answer "SET key value", "GET key" and "DEL key", one request per
 * message, over any address the component serves (framed TCP by default; add ?framing=line to
 * talk to it with nc).
 *
 * The workers are processes, so the table they share lives in memory mapped MAP_SHARED before
 * ipk_server_run() forks them, guarded by a process-shared robust mutex: a worker killed while
 * holding it does not wedge the others (the next one takes the lock over and goes on).
 *
 * Run:   ./kv_server 'tcp://127.0.0.1:7001?framing=line' &
 *        printf 'SET colour blue\nGET colour\n' | nc -q1 127.0.0.1 7001     ->  OK, blue
 * Stop:  kill -QUIT %1 (graceful), reload with kill -HUP %1.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ipckit/serve.h"

#define SLOTS   1024
#define KEY_MAX 64
#define VAL_MAX 256

typedef struct entry {
    char key[KEY_MAX + 1];
    char val[VAL_MAX + 1];
    int used;
} entry;

typedef struct table {
    pthread_mutex_t lock;
    entry e[SLOTS];
} table;

static unsigned hash(const char *k, size_t n)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

/* The slot holding key, or the free slot where it would go (NULL: full and absent). */
static entry *find(table *t, const char *k, size_t n)
{
    entry *free_slot = NULL;
    for (unsigned i = 0, h = hash(k, n); i < SLOTS; i++) {
        entry *e = &t->e[(h + i) % SLOTS];
        if (e->used && strlen(e->key) == n && memcmp(e->key, k, n) == 0)
            return e;
        if (!e->used && free_slot == NULL)
            free_slot = e;
    }
    return free_slot;
}

static void lock(table *t)
{
    if (pthread_mutex_lock(&t->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&t->lock); /* a worker died holding it; entries are whole */
}

static int reply(ipk_conn *c, const char *text)
{
    return ipk_conn_send(c, text, strlen(text));
}

static int on_msg(ipk_conn *c, const void *msg, size_t len, void *arg)
{
    table *t = arg;
    const char *m = msg, *end = m + len;
    const char *key = memchr(m, ' ', len);
    if (key == NULL || key - m != 3)
        return reply(c, "ERR expected SET key value, GET key or DEL key");
    key++;
    const char *sp = memchr(key, ' ', (size_t)(end - key));
    size_t klen = (size_t)((sp ? sp : end) - key);
    if (klen == 0 || klen > KEY_MAX)
        return reply(c, "ERR key of 1 to 64 bytes expected");
    char out[VAL_MAX + 1] = "";
    lock(t);
    entry *e = find(t, key, klen);
    if (memcmp(m, "SET", 3) == 0 && sp && (size_t)(end - sp - 1) <= VAL_MAX) {
        if (e != NULL) {
            memcpy(e->key, key, klen);
            e->key[klen] = '\0';
            memcpy(e->val, sp + 1, (size_t)(end - sp - 1));
            e->val[end - sp - 1] = '\0';
            e->used = 1;
        }
        snprintf(out, sizeof out, "%s", e ? "OK" : "ERR table full");
    } else if (memcmp(m, "GET", 3) == 0 && !sp) {
        snprintf(out, sizeof out, "%s", e && e->used ? e->val : "ERR no such key");
    } else if (memcmp(m, "DEL", 3) == 0 && !sp) {
        snprintf(out, sizeof out, "%s", e && e->used ? "OK" : "ERR no such key");
        if (e) /* find() never stops at a free slot, so a hole needs no tombstone */
            e->used = 0;
    } else {
        snprintf(out, sizeof out, "ERR bad request");
    }
    pthread_mutex_unlock(&t->lock);
    return reply(c, out);
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7001";
    table *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&t->lock, &ma);

    ipk_server *s;
    if (ipk_server_new(&s) != 0)
        return 1;
    ipk_server_set(s, "name", "kv_server");
    ipk_server_set(s, "workers", "2");
    if (ipk_server_listen(s, url, NULL) != 0) {
        fprintf(stderr, "kv_server: %s\n", ipk_server_errmsg(s));
        return 1;
    }
    ipk_serve_handlers h = {.on_msg = on_msg};
    ipk_server_handlers(s, &h, t);
    int r = ipk_server_run(s); /* until TERM, INT or QUIT */
    if (r != 0)
        fprintf(stderr, "kv_server: %s\n", ipk_server_errmsg(s));
    ipk_server_free(s);
    return r == 0 ? 0 : 1;
}
