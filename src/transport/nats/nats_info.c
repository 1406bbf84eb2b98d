/*
 * nats_info.c - ipk_info() for nats: addresses: the semantics, then what the first server that
 * answers says of itself. A NATS server greets every client with one INFO line of JSON (its
 * id, version, max_payload, whether it runs JetStream, its cluster) before any
 * authentication or TLS, so reading that line needs no credentials and no libnats.
 */
#include "nats_int.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IPK__NATS_INFO_MS 1000 /* how long each server may take to greet */

/* Connects to host:port and reads the greeting into buf; 0, or a negative errno. */
static int ipk__nats_greeting(const char *host, unsigned port, char *buf, size_t cap)
{
    char ps[8];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    snprintf(ps, sizeof ps, "%u", port);
    int e = getaddrinfo(host, ps, &hints, &ai);
    if (e != 0)
        return e == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
    int r = -ECONNREFUSED;
    for (const struct addrinfo *p = ai; p && r != 0; p = p->ai_next) {
        int fd = ipk__sys_socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        int64_t dl = ipk__deadline(IPK__NATS_INFO_MS);
        r = ipk__sys_connect(fd, p->ai_addr, p->ai_addrlen) == 0 || errno == EINPROGRESS ? 0
                                                                                         : -errno;
        size_t got = 0;
        while (r == 0 && (got == 0 || memchr(buf, '\n', got) == NULL)) {
            if (got + 1 >= cap)
                break;
            int w = ipk__wait_fd(fd, POLLIN, dl);
            ssize_t k = w < 0 ? 0 : ipk__read(fd, buf + got, cap - 1 - got);
            if (w < 0)
                r = -ETIMEDOUT;
            else if (k < 0 && k != -EAGAIN)
                r = (int)k;
            else if (k == 0)
                r = -ECONNRESET;
            else if (k > 0)
                got += (size_t)k;
        }
        buf[got] = '\0';
        ipk__close_fd(fd);
        if (r == 0 && strncmp(buf, "INFO ", 5) != 0)
            r = -EPROTO;
    }
    freeaddrinfo(ai);
    return r;
}

/* The value of "key" in the INFO JSON, copied into out: a string without its quotes, or a
 * number or a boolean as written. "" when absent. */
static const char *ipk__nats_field(const char *json, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    out[0] = '\0';
    if (p == NULL)
        return out;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    size_t n = *p == '"' ? strcspn(++p, "\"") : *p == '[' ? strcspn(p, "]") + 1 : strcspn(p, ",}");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static void ipk__nats_describe(FILE *f, const ipk__addr *a)
{
    ipk__nats_url u;
    if (ipk__nats_split(a->body, "nats:", &u) != 0)
        return;
    fprintf(f,
            "nats:%s - a NATS subject, through libnats %s\n"
            "  listen subscribes to the subject (?queue=GROUP: one member of a queue group gets\n"
            "  each message); dial publishes to it. One send is one message, confirmed by the\n"
            "  server before send returns (timeout 0: handed to the connection). A dialer's\n"
            "  message carries its reply inbox: the listener's next send after a recv answers\n"
            "  it. ?stream=NAME: JetStream, the stream made when absent (?replicas=N); a send\n"
            "  returns once the stream stored the message; a listener consumes (?durable=NAME:\n"
            "  a consumer that outlives it) and acknowledges a message when recv returns it, so\n"
            "  a consumer that dies loses nothing (redelivery after ?ackwait= ms). msginfo prio\n"
            "  and type travel as headers Ipk-Prio and Ipk-Type. libnats reconnects with a\n"
            "  back-off and buffers output meanwhile (?reconnect_buf=). Credentials: ?user=\n"
            "  &password=, ?token=, ?nkey=FILE (public key U... and seed SU...), ?creds=FILE\n"
            "  (JWT); TLS: ?tls=1, ?ca=FILE (CAs for the server's certificate), ?cert=FILE&\n"
            "  key=FILE (mutual TLS). Refused credentials: -EACCES; TLS failures: -EPROTO.\n"
            "  Options: queue stream durable replicas ackwait pending user password token\n"
            "  nkey creds tls ca cert key reconnect reconnect_wait reconnect_buf\n"
            "  connect_timeout oneway asap (docs/semantics/nats.md has the table).\n",
            a->body, nats_GetVersion());
    for (int i = 0; i < u.n; i++) {
        char buf[8192], v[512];
        int r = ipk__nats_greeting(u.host[i], u.port[i], buf, sizeof buf);
        if (r != 0) {
            fprintf(f, "Server %s: %s\n", u.server[i], strerror(-r));
            continue;
        }
        fprintf(f, "Server %s (live):\n", u.server[i]);
        static const char *const keys[] = {
            "server_name", "server_id", "version",      "max_payload",   "jetstream",   "headers",
            "proto",       "cluster",   "tls_required", "auth_required", "connect_urls"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (*ipk__nats_field(buf, keys[k], v, sizeof v))
                fprintf(f, "  %-14s %s\n", keys[k], v);
        break; /* one server speaks for the cluster */
    }
}

long ipk__nats_info(const ipk__addr *a, char *buf, size_t cap)
{
    return ipk__info_print(a, buf, cap, ipk__nats_describe);
}
