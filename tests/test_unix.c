/*
 * test_unix.c - unix:, unixpacket: and unixgram: between real processes: the datagram suite
 * (sock_suite.h) for unixgram and unixpacket; for all three, stale and live socket files, files
 * that are not sockets, permissions (0600 by default; a non-root peer is refused), removal on
 * close (only the inode bound, only by its process, not with keep=1), abstract names, peer
 * credentials, zero-length packets vs end-of-stream, a full datagram queue, option errors.
 * (The generic stream conformance suite runs over unix: in test_stream.c.)
 */
#include "sock_suite.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>

static const char *const schemes[] = {"unix", "unixpacket", "unixgram"};

/* "scheme:/unique/path", journalled so that a crashed test leaves no file behind. */
static const char *uurl(char *b, size_t cap, const char *scheme)
{
    char p[256];
    ipkt_path(p, sizeof p, "sock");
    ipkt_journal("path", p);
    snprintf(b, cap, "%s:%s", scheme, p);
    return b;
}

static const char *upath(const char *url)
{
    return strchr(url, ':') + 1;
}

static const char *kind_url(const char *scheme)
{
    static char b[2][300]; /* two kinds may be alive at once */
    static int n;
    n = !n;
    return uurl(b[n], sizeof b[n], scheme);
}

#define GRAM_KIND                                                                                  \
    {                                                                                              \
        .listen = kind_url("unixgram")                                                             \
    }
#define PACKET_KIND                                                                                \
    {                                                                                              \
        .listen = kind_url("unixpacket"), .connected = 1                                           \
    }

DG_SUITE(gram, GRAM_KIND)
DG_SUITE(packet, PACKET_KIND)

static void t_gram_reply(void **s)
{
    dg_kind k = GRAM_KIND;
    (void)s;
    dg_reply(&k);
}

static void t_gram_gone(void **s)
{
    dg_kind k = GRAM_KIND;
    (void)s;
    dg_gone(&k);
}

static void t_options(void **s)
{
    (void)s;
    dg_kind g = GRAM_KIND, p = PACKET_KIND;
    dg_options(&g, "framing");
    dg_options(&g, "backlog");
    dg_options(&p, "framing");
    dg_options(&p, "nodelay");
    char url[300];
    ipk_chan *c = (ipk_chan *)0x1;
    uurl(url, sizeof url, "unix");
    strcat(url, "?nodelay=1");
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'nodelay' for unix:");
    uurl(url, sizeof url, "unix");
    strcat(url, "?backlog=0");
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("backlog=0: expected an integer in 1..");
    uurl(url, sizeof url, "unixpacket");
    strcat(url, "?perm=010000");
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("perm=010000");
    uurl(url, sizeof url, "unix");
    strcat(url, "?keep=maybe");
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("keep=maybe");
    assert_null(c);
}

/* ---- connecting any of the three kinds ---- */

/* The parent's end of a connection from a child: accepted, or the listener itself. */
static ipk_chan *serve(ipk_chan *l)
{
    if (strcmp(ipk_scheme(l), "unixgram") == 0)
        return l;
    ipk_chan *p = NULL;
    ipkt_ok(ipk_accept(l, &p, -1));
    return p;
}

typedef struct hello {
    char url[300];
    int nobody; /* become "nobody" before dialing */
    int expect; /* what dial must return */
} hello;

/* Dials, checks the listener's credentials where the kind has them, sends our pid, waits for
 * the echo. */
static int hello_child(void *arg)
{
    hello *h = arg;
    if (h->nobody)
        IPKT_CHECK(ipkt_become_nobody() == 0);
    ipk_chan *c = NULL;
    int r = ipk_dial(&c, h->url, NULL);
    IPKT_CHECK(r == h->expect);
    if (r != 0)
        return 0;
    if (strncmp(h->url, "unixgram:", 9) != 0) {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        IPKT_CHECK(ipk_peer(c, &pid, &uid, &gid) == 0);
        IPKT_CHECK(pid == getppid() && uid == 0 && gid == 0);
    }
    pid_t me = getpid(), back = 0;
    IPKT_CHECK(ipk_send(c, &me, sizeof me, -1) == 0);
    ipk_msginfo mi;
    IPKT_CHECK(ipk_recvx(c, &back, sizeof back, &mi, -1) == (long)sizeof back);
    IPKT_CHECK(back == me && mi.pid == getppid());
    return ipk_close(c) == 0 ? 0 : 1;
}

/* A child dials l (as h says) and says hello; the parent checks who it is. */
static void hello_exchange(ipk_chan *l, hello *h, uid_t uid)
{
    snprintf(h->url, sizeof h->url, "%s", ipk_addr(l));
    pid_t pid = ipkt_spawn(hello_child, h);
    ipk_chan *p = serve(l);
    pid_t who = 0;
    ipk_msginfo mi;
    ipkt_expect(ipk_recvx(p, &who, sizeof who, &mi, -1), sizeof who);
    assert_int_equal(who, pid);
    assert_int_equal(mi.pid, pid); /* from SO_PEERCRED, or the datagram's SCM_CREDENTIALS */
    assert_int_equal(mi.uid, uid);
    if (p != l) {
        pid_t ppid;
        uid_t puid;
        ipkt_ok(ipk_peer(p, &ppid, &puid, NULL));
        assert_int_equal(ppid, pid);
        assert_int_equal(puid, uid);
    }
    ipkt_ok(ipk_send(p, &who, sizeof who, -1));
    assert_int_equal(ipkt_wait(pid), 0);
    if (p != l)
        ipkt_ok(ipk_close(p));
}

static uid_t nobody_uid(void)
{
    struct passwd *pw = getpwnam("nobody");
    return pw ? pw->pw_uid : 65534;
}

/* ---- tests ---- */

static void t_exchange_creds(void **s)
{
    (void)s;
    for (size_t i = 0; i < 3; i++) {
        char url[300];
        ipk_chan *l = NULL;
        ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, schemes[i]), NULL));
        assert_string_equal(ipk_addr(l), url);
        hello h = {.expect = 0};
        hello_exchange(l, &h, 0);
        ipkt_ok(ipk_close(l));
    }
}

/* A child that became "nobody" is refused by a 0600 root socket, and let in at 0666. */
static void t_permission(void **s)
{
    (void)s;
    for (size_t i = 0; i < 3; i++) {
        char url[300];
        ipk_chan *l = NULL;
        ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, schemes[i]), NULL));
        hello h = {.nobody = 1, .expect = -EACCES};
        snprintf(h.url, sizeof h.url, "%s", url);
        assert_int_equal(ipkt_wait(ipkt_spawn(hello_child, &h)), 0);
        ipkt_ok(ipk_close(l));
        strcat(url, "?perm=0666");
        ipkt_ok(ipk_listen(&l, url, NULL));
        h.expect = 0;
        hello_exchange(l, &h, nobody_uid());
        ipkt_ok(ipk_close(l));
    }
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    return st.st_mode & 07777;
}

static void t_perm(void **s)
{
    (void)s;
    umask(0077); /* perm is applied exactly, whatever the umask */
    for (size_t i = 0; i < 3; i++) {
        char url[300];
        ipk_chan *l = NULL;
        ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, schemes[i]), NULL));
        assert_int_equal(mode_of(upath(url)), 0600);
        ipkt_ok(ipk_close(l));
        ipk_opts *o = ipk_opts_new();
        ipkt_ok(ipk_opts_set(o, "perm", "0660"));
        ipkt_ok(ipk_listen(&l, url, o));
        assert_int_equal(mode_of(upath(url)), 0660);
        ipk_opts_free(o);
        ipkt_ok(ipk_close(l));
    }
}

/* A socket file nobody listens on is replaced; one with a live listener is refused. */
static void t_stale_and_live(void **s)
{
    (void)s;
    const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
    for (size_t i = 0; i < 3; i++) {
        char url[300];
        uurl(url, sizeof url, schemes[i]);
        int fd = socket(AF_UNIX, types[i], 0);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", upath(url));
        assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
        close(fd); /* the file stays: stale */
        ipk_chan *l = NULL, *l2 = (ipk_chan *)0x1;
        ipkt_ok(ipk_listen(&l, url, NULL));
        ipkt_expect(ipk_listen(&l2, url, NULL), -EADDRINUSE);
        ipkt_errmsg_has("a live process owns this socket");
        assert_null(l2);
        if (types[i] != SOCK_DGRAM) {
            /* The probe was a real connection: the live listener sees it open and close. */
            ipk_chan *probe = NULL;
            char b[8];
            ipkt_ok(ipk_accept(l, &probe, -1));
            ipkt_expect(ipk_recv(probe, b, sizeof b, -1), IPK_EOF);
            ipkt_ok(ipk_close(probe));
        }
        /* The live listener still works after the refused attempt. */
        hello h = {.expect = 0};
        hello_exchange(l, &h, 0);
        ipkt_ok(ipk_close(l));
    }
}

static void t_not_a_socket(void **s)
{
    (void)s;
    for (size_t i = 0; i < 3; i++) {
        char url[300];
        uurl(url, sizeof url, schemes[i]);
        int fd = open(upath(url), O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "precious", 8), 8);
        close(fd);
        ipk_chan *l = (ipk_chan *)0x1;
        ipkt_expect(ipk_listen(&l, url, NULL), -EEXIST);
        ipkt_errmsg_has("exists and is not a socket; it was left alone");
        struct stat st;
        assert_int_equal(stat(upath(url), &st), 0);
        assert_true(S_ISREG(st.st_mode) && st.st_size == 8);
        /* Dialing a file that is not a socket is refused. */
        ipkt_expect(ipk_dial(&l, url, NULL), -ECONNREFUSED);
        ipkt_errmsg_has("connect");
    }
}

static int close_copy_child(void *arg)
{
    return ipk_close(arg) == 0 ? 0 : 1;
}

static void t_removal(void **s)
{
    (void)s;
    struct stat st;
    for (size_t i = 0; i < 3; i++) {
        char url[300], keep[320];
        ipk_chan *l = NULL;
        ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, schemes[i]), NULL));
        /* A forked child closing its copy of the listener leaves the file alone. */
        assert_int_equal(ipkt_wait(ipkt_spawn(close_copy_child, l)), 0);
        assert_int_equal(lstat(upath(url), &st), 0);
        ipkt_ok(ipk_close(l));
        assert_int_equal(lstat(upath(url), &st), -1);
        /* keep=1: the file outlives the channel. */
        snprintf(keep, sizeof keep, "%s?keep=1", url);
        ipkt_ok(ipk_listen(&l, keep, NULL));
        ipkt_ok(ipk_close(l));
        assert_int_equal(lstat(upath(url), &st), 0);
        /* ... and is then stale, so the next listener replaces it. */
        ipkt_ok(ipk_listen(&l, url, NULL));
        /* Someone else's file at the path by close time is not removed. */
        assert_int_equal(unlink(upath(url)), 0);
        int fd = open(upath(url), O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
        ipkt_ok(ipk_close(l));
        assert_int_equal(lstat(upath(url), &st), 0);
        assert_true(S_ISREG(st.st_mode));
        unlink(upath(url));
    }
}

static void t_abstract(void **s)
{
    (void)s;
    for (size_t i = 0; i < 3; i++) {
        char name[64], url[128];
        snprintf(url, sizeof url, "%s:@%s", schemes[i], ipkt_name(name, sizeof name, ""));
        ipk_chan *l = NULL, *l2 = (ipk_chan *)0x1;
        ipkt_ok(ipk_listen(&l, url, NULL));
        assert_string_equal(ipk_addr(l), url);
        ipkt_expect(ipk_listen(&l2, url, NULL), -EADDRINUSE);
        ipkt_errmsg_has("abstract name is in use");
        hello h = {.expect = 0};
        hello_exchange(l, &h, 0);
        ipkt_ok(ipk_close(l));
        /* Gone with its socket: no file, nothing stale, and dialing it is refused. */
        ipkt_expect(ipk_dial(&l2, url, NULL), -ECONNREFUSED);
        ipkt_ok(ipk_listen(&l, url, NULL));
        ipkt_ok(ipk_close(l));
    }
}

static void t_dial_errors(void **s)
{
    (void)s;
    char url[300], other[300];
    ipk_chan *c = (ipk_chan *)0x1, *l = NULL;
    for (size_t i = 0; i < 3; i++) {
        ipkt_expect(ipk_dial(&c, uurl(url, sizeof url, schemes[i]), NULL), -ENOENT);
        ipkt_errmsg_has("connect to the socket: No such file or directory");
        snprintf(url, sizeof url, "%s:%s/no/such/dir/s", schemes[i], ipkt_dir());
        ipkt_expect(ipk_listen(&c, url, NULL), -ENOENT);
        ipkt_errmsg_has("bind");
        /* A live socket of another kind at the path. */
        ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, schemes[i]), NULL));
        snprintf(other, sizeof other, "%s:%s", schemes[(i + 1) % 3], upath(url));
        ipkt_expect(ipk_dial(&c, other, NULL), -EPROTOTYPE);
        ipkt_errmsg_has("the socket there is of another type");
        ipkt_expect(ipk_listen(&c, other, NULL), -EADDRINUSE);
        ipkt_errmsg_has("a live process owns this socket");
        ipkt_ok(ipk_close(l));
    }
    assert_null(c);
}

static int packet_child(void *arg)
{
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, arg, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "", 0, -1) == 0);
    IPKT_CHECK(ipk_send(c, "bye", 3, -1) == 0);
    IPKT_CHECK(ipk_send(c, NULL, 0, -1) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* A zero-length packet is a message; end-of-stream is IPK_EOF. recvmsg() returns 0 for both;
 * the packet carries SCM_CREDENTIALS and the end does not, which is how they are told apart:
 * by the credentials themselves in ipk_recvx, by the MSG_CTRUNC that flags them dropped in
 * ipk_recv, which gives the kernel no control buffer. */
static void t_packet_zero_and_eof(void **s)
{
    (void)s;
    char url[300];
    ipk_chan *l = NULL, *p = NULL;
    ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, "unixpacket"), NULL));
    pid_t pid = ipkt_spawn(packet_child, url);
    ipkt_ok(ipk_accept(l, &p, -1));
    char b[8];
    ipk_msginfo mi;
    ipkt_expect(ipk_recvx(p, b, sizeof b, &mi, -1), 0);
    assert_int_equal(mi.pid, pid);
    ipkt_expect(ipk_recv(p, b, 2, -1), IPK_EMSGSIZE);
    ipkt_expect(ipk_recv(p, b, sizeof b, -1), 3);
    ipkt_expect(ipk_recv(p, NULL, 0, -1), 0); /* the last packet fits no buffer at all */
    ipkt_expect(ipk_recv(p, b, sizeof b, -1), IPK_EOF);
    ipkt_errmsg_has("the peer closed the connection");
    ipkt_expect(ipk_recv(p, b, sizeof b, 0), IPK_EOF);
    ipkt_expect(ipk_send(p, "x", 1, -1), -EPIPE); /* and no SIGPIPE */
    assert_int_equal(ipkt_wait(pid), 0);
    ipkt_ok(ipk_close(p));
    /* The dialer's side of the same: the server end closes. */
    ipk_chan *d = NULL;
    ipkt_ok(ipk_dial(&d, url, NULL));
    ipkt_ok(ipk_accept(l, &p, -1));
    ipkt_ok(ipk_send(p, "last", 4, -1));
    ipkt_ok(ipk_close(p));
    ipkt_expect(ipk_recv(d, b, sizeof b, -1), 4);
    ipkt_expect(ipk_recv(d, b, sizeof b, -1), IPK_EOF);
    ipkt_expect(ipk_send(d, "x", 1, 0), -EPIPE);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

/* A full unixgram queue: timeout 0 is -EAGAIN, a positive one IPK_ETIMEDOUT; nothing is lost.
 * The same from the listener's side, whose poll cannot see the dialer's queue. */
static void t_gram_full(void **s)
{
    (void)s;
    char url[300];
    ipk_chan *l = NULL, *c = NULL;
    ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, "unixgram"), NULL));
    ipkt_ok(ipk_dial(&c, url, NULL));
    uint32_t n = 0, got;
    int r;
    while ((r = ipk_send(c, &n, sizeof n, 0)) == 0)
        n++;
    assert_int_equal(r, -EAGAIN);
    ipkt_errmsg_has("queue is full");
    assert_true(n >= 1);
    ipkt_expect(ipk_send(c, &n, sizeof n, 20), IPK_ETIMEDOUT);
    for (uint32_t i = 0; i < n; i++) {
        ipkt_expect(ipk_recv(l, &got, sizeof got, 0), sizeof got);
        assert_int_equal(got, i);
    }
    ipkt_expect(ipk_recv(l, &got, sizeof got, 0), -EAGAIN);
    uint32_t m = 0;
    while ((r = ipk_send(l, &m, sizeof m, 0)) == 0)
        m++;
    assert_int_equal(r, -EAGAIN);
    ipkt_expect(ipk_send(l, &m, sizeof m, 20), IPK_ETIMEDOUT);
    for (uint32_t i = 0; i < m; i++) {
        ipkt_expect(ipk_recv(c, &got, sizeof got, 0), sizeof got);
        assert_int_equal(got, i);
    }
    /* The dialer gone, a reply to it is refused. */
    ipkt_ok(ipk_send(c, "x", 1, -1));
    ipkt_expect(ipk_recv(l, &got, sizeof got, -1), 1);
    ipkt_ok(ipk_close(c));
    ipkt_expect(ipk_send(l, "y", 1, -1), -ECONNREFUSED);
    ipkt_errmsg_has("the peer socket is gone");
    ipkt_ok(ipk_close(l));
}

static void t_accept_timeouts(void **s)
{
    (void)s;
    for (size_t i = 0; i < 2; i++) {
        char url[300];
        ipk_chan *l = NULL, *p = (ipk_chan *)0x1;
        ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, schemes[i]), NULL));
        ipkt_expect(ipk_accept(l, &p, 0), -EAGAIN);
        ipkt_errmsg_has("no connection is waiting");
        ipkt_expect(ipk_accept(l, &p, 20), IPK_ETIMEDOUT);
        ipkt_errmsg_has("no connection came before the deadline");
        assert_null(p);
        ipkt_ok(ipk_close(l));
    }
}

static void t_info(void **s)
{
    (void)s;
    for (size_t i = 0; i < 3; i++) {
        char url[64];
        snprintf(url, sizeof url, "%s:/x", schemes[i]);
        ipkt_info_has(url, (const char *const[]){"/proc/sys/net/unix/max_dgram_qlen", NULL});
    }
}

/* A socket shared across fork(): a forever receive blocks in the kernel in one process while a
 * timed receive in the other still ends at its deadline (no O_NONBLOCK flag is switched on the
 * shared descriptor; the mode is chosen per call). */
static int shared_forever(void *arg)
{
    ipk_chan *l = arg;
    char b[16];
    IPKT_CHECK(ipk_recv(l, b, sizeof b, -1) == 4 && memcmp(b, "wake", 4) == 0);
    return 0;
}

static void t_gram_shared_fork(void **s)
{
    (void)s;
    char url[300];
    ipk_chan *l = NULL, *d = NULL;
    ipkt_ok(ipk_listen(&l, uurl(url, sizeof url, "unixgram"), NULL));
    pid_t pid = ipkt_spawn(shared_forever, l);
    sleep_ms(30); /* most likely the child is in its receive by now; either order must pass */
    char b[16];
    ipkt_expect(ipk_recv(l, b, sizeof b, 40), IPK_ETIMEDOUT);
    ipkt_errmsg_has("before the deadline");
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), -EAGAIN);
    ipkt_ok(ipk_dial(&d, url, NULL));
    ipkt_ok(ipk_send(d, "wake", 4, -1));
    assert_int_equal(ipkt_wait(pid), 0);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

IPKT_MAIN(DG_TESTS(gram), DG_TESTS(packet), cmocka_unit_test(t_gram_reply),
          cmocka_unit_test(t_gram_gone), cmocka_unit_test(t_options),
          cmocka_unit_test(t_exchange_creds), cmocka_unit_test(t_permission),
          cmocka_unit_test(t_perm), cmocka_unit_test(t_stale_and_live),
          cmocka_unit_test(t_not_a_socket), cmocka_unit_test(t_removal),
          cmocka_unit_test(t_abstract), cmocka_unit_test(t_dial_errors),
          cmocka_unit_test(t_packet_zero_and_eof), cmocka_unit_test(t_gram_full),
          cmocka_unit_test(t_accept_timeouts), cmocka_unit_test(t_gram_shared_fork),
          cmocka_unit_test(t_info))
