/*
 * test_objects.c - the kernel objects behind ipk_objects_scan()/ipk_objects_resolve() and
 * `ipckit ls`/`ipckit rm`: real objects made by real processes, found with their holder and
 * depth; a queue whose owner died with messages in it is undelivered, kept by rm --stale and
 * removed only by --force; another user's objects are left alone unless root asks; addresses
 * are read by the transport's own parser; what ls --json prints, rm takes back.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIN IPKT_BIN_DIR "/ipckit"

/* Runs `ipckit ARGS` (a shell command line; stderr joins stdout) and returns its exit status. */
static int tool(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tool(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "%s ", BIN);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    if (getenv("IPKT_VERBOSE"))
        print_message("%s -> %d\n%s", cmd, st, out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        print_error("expected \"%s\" in:\n%s\n", needle, hay);
    assert_non_null(strstr(hay, needle));
}

/* The object of the list with this URL, or NULL. */
static const ipk_object *by_url(const ipk_objects *l, const char *url)
{
    for (size_t i = 0; i < ipk_objects_count(l); i++)
        if (strcmp(ipk_object_url(ipk_objects_at(l, i)), url) == 0)
            return ipk_objects_at(l, i);
    return NULL;
}

static int held_by(const ipk_object *o, pid_t pid)
{
    for (size_t i = 0; i < ipk_object_npids(o); i++)
        if (ipk_object_pid(o, i) == pid)
            return 1;
    return 0;
}

/* ---- a process that makes one object of every kind and holds it ---- */

typedef struct maker {
    char mq[64], shm[64], sysv_file[200], fifo[200], sock[200];
    char mq_url[80], shm_url[80], sysv_url[240], fifo_url[220], sock_url[220];
    int ready[2], go[2];
} maker;

static void maker_init(maker *m)
{
    ipkt_name(m->mq, sizeof m->mq, "/");
    ipkt_name(m->shm, sizeof m->shm, "/");
    ipkt_path(m->sysv_file, sizeof m->sysv_file, "sysv");
    ipkt_path(m->fifo, sizeof m->fifo, "fifo");
    ipkt_path(m->sock, sizeof m->sock, "sock");
    snprintf(m->mq_url, sizeof m->mq_url, "mq:%s", m->mq);
    snprintf(m->shm_url, sizeof m->shm_url, "shm:%s", m->shm);
    snprintf(m->fifo_url, sizeof m->fifo_url, "fifo:%s", m->fifo);
    snprintf(m->sock_url, sizeof m->sock_url, "unix:%s", m->sock);
    FILE *f = fopen(m->sysv_file, "we");
    assert_non_null(f);
    fclose(f);
    ipkt_journal("mq", m->mq);
    ipkt_journal("shm", m->shm);
    ipkt_journal("path", m->fifo);
    ipkt_journal("path", m->sock);
    assert_int_equal(pipe(m->ready), 0);
    assert_int_equal(pipe(m->go), 0);
}

static int send_n(ipk_chan *c, int n, const char *msg)
{
    for (int i = 0; i < n; i++)
        IPKT_CHECK(ipk_send(c, msg, strlen(msg), 1000) == 0);
    return 0;
}

/* In the child: 2 messages in the mq, 3 in the sysv queue (proj=3), 3 in the shm ring, one
 * 10-byte frame in the FIFO (which it holds for reading and writing), a listening socket. Then
 * it says so and waits to be killed - or, with die, kills itself without closing anything. */
static int maker_run(maker *m, int die)
{
    char sysv[260];
    snprintf(sysv, sizeof sysv, "sysv:%s?proj=3", m->sysv_file);
    ipk_chan *q, *s, *v, *fr, *fw, *u;
    IPKT_CHECK(ipk_listen(&q, m->mq_url, NULL) == 0);
    IPKT_CHECK(ipk_listen(&v, sysv, NULL) == 0);
    char shm[120];
    snprintf(shm, sizeof shm, "%s?size=4096", m->shm_url);
    IPKT_CHECK(ipk_listen(&s, shm, NULL) == 0);
    IPKT_CHECK(ipk_listen(&fr, m->fifo_url, NULL) == 0);
    IPKT_CHECK(ipk_dial(&fw, m->fifo_url, NULL) == 0);
    IPKT_CHECK(ipk_listen(&u, m->sock_url, NULL) == 0);
    if (send_n(q, 2, "mq") || send_n(v, 3, "sysv") || send_n(s, 3, "shm") ||
        send_n(fw, 1, "0123456789"))
        return 1;
    if (die)
        raise(SIGKILL);
    IPKT_CHECK(write(m->ready[1], "r", 1) == 1);
    char b;
    IPKT_CHECK(read(m->go[0], &b, 1) >= 0);
    return 0;
}

static pid_t maker_start(maker *m, int die)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(maker_run(m, die));
    ipkt_journal_id("pid", pid);
    if (die) {
        assert_int_equal(ipkt_wait(pid), 128 + SIGKILL);
    } else {
        char b;
        assert_int_equal(read(m->ready[0], &b, 1), 1);
    }
    int id = msgget(ftok(m->sysv_file, 3), 0);
    assert_true(id >= 0);
    ipkt_journal_id("msqid", id);
    snprintf(m->sysv_url, sizeof m->sysv_url, "sysv:0x%08x", (unsigned)ftok(m->sysv_file, 3));
    return pid;
}

static ipk_objects *scan_dir(void)
{
    ipk_objects *l;
    const char *dirs[] = {ipkt_dir(), NULL};
    ipkt_ok(ipk_objects_new(&l));
    ipkt_ok(ipk_objects_scan(l, dirs));
    return l;
}

/* Kind, holder, depth and state of every object of a live maker, from a scan and by address. */
static void t_scan_finds_each_kind(void **state)
{
    (void)state;
    maker m;
    maker_init(&m);
    pid_t pid = maker_start(&m, 0);
    ipk_objects *l = scan_dir();
    static const struct {
        size_t off;
        const char *kind;
        long long msgs, bytes;
    } want[] = {
        {offsetof(maker, mq_url), "posix-mq", 2, -2},
        {offsetof(maker, sysv_url), "sysv-msg", 3, 12},
        {offsetof(maker, shm_url), "posix-shm", 3, 9},
        {offsetof(maker, fifo_url), "fifo", -1, 14}, /* a 4-byte length, then 10 bytes */
        {offsetof(maker, sock_url), "unix-socket", -1, -1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *url = (const char *)&m + want[i].off;
        const ipk_object *o = by_url(l, url);
        if (o == NULL)
            print_error("%s not found\n", url);
        assert_non_null(o);
        assert_string_equal(ipk_object_kind(o), want[i].kind);
        assert_true(held_by(o, pid));
        assert_int_equal(ipk_object_state(o), IPK_OBJ_IN_USE);
        assert_int_equal(ipk_object_owner_gone(o), 0);
        assert_int_equal(ipk_object_uid(o), geteuid());
        assert_int_equal(ipk_object_mode(o) & 0777, 0600);
        assert_int_equal(ipk_object_messages(o), want[i].msgs);
        if (want[i].bytes != -2)
            assert_int_equal(ipk_object_bytes(o), want[i].bytes);
        /* The URL names it back, through the transport's own parser. */
        ipk_objects *one;
        ipkt_ok(ipk_objects_new(&one));
        ipkt_ok(ipk_objects_resolve(one, url));
        assert_int_equal(ipk_objects_count(one), 1);
        assert_string_equal(ipk_object_name(ipk_objects_at(one, 0)), ipk_object_name(o));
        assert_true(held_by(ipk_objects_at(one, 0), pid));
        ipk_objects_free(one);
    }
    assert_string_equal(ipk_object_scheme(by_url(l, m.sysv_url)), "sysv");
    ipk_objects_free(l);

    /* The maker is killed: nothing was closed. The queues and the ring hold what was sent and
     * are undelivered; the FIFO's data went with its last holder, the socket answers nobody. */
    kill(pid, SIGKILL);
    assert_int_equal(ipkt_wait(pid), 128 + SIGKILL);
    l = scan_dir();
    const char *undelivered[] = {m.mq_url, m.sysv_url, m.shm_url};
    for (size_t i = 0; i < 3; i++) {
        const ipk_object *o = by_url(l, undelivered[i]);
        assert_non_null(o);
        assert_int_equal(ipk_object_owner_gone(o), 1);
        assert_int_equal(ipk_object_state(o), IPK_OBJ_UNDELIVERED);
        ipkt_expect(ipk_object_remove(o, 0), -ENOTEMPTY);
    }
    const char *stale[] = {m.fifo_url, m.sock_url};
    for (size_t i = 0; i < 2; i++) {
        const ipk_object *o = by_url(l, stale[i]);
        assert_non_null(o);
        assert_int_equal(ipk_object_state(o), IPK_OBJ_STALE);
    }
    assert_int_equal(ipk_object_bytes(by_url(l, m.fifo_url)), 0);
    /* Forced, the undelivered ones go too. */
    for (size_t i = 0; i < ipk_objects_count(l); i++) {
        const ipk_object *o = ipk_objects_at(l, i);
        for (size_t k = 0; k < 3; k++)
            if (strcmp(ipk_object_url(o), undelivered[k]) == 0)
                ipkt_ok(ipk_object_remove(o, IPK_OBJ_FORCE));
    }
    ipk_objects_free(l);
    assert_true(mq_unlink(m.mq) == -1 && errno == ENOENT);
    assert_true(msgget(ftok(m.sysv_file, 3), 0) == -1 && errno == ENOENT);
}

/* Issue 10: a queue holding 3 messages whose owner died is listed as undelivered, survives
 * rm --stale (named, or not) and a plain rm, and goes with rm --force. */
static void t_undelivered_needs_force(void **state)
{
    (void)state;
    maker m;
    maker_init(&m);
    maker_start(&m, 1);
    char out[1 << 16], cmd[600];
    assert_int_equal(tool(out, sizeof out, "ls --json -D %s -k sysv-msg,posix-mq > %s/ls.json",
                          ipkt_dir(), ipkt_dir()),
                     0);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys\n"
             "o={x[\"url\"]:x for x in json.load(open(sys.argv[1]))[\"objects\"]}\n"
             "for u in sys.argv[2:]:\n"
             "  assert o[u][\"state\"]==\"undelivered\" and o[u][\"messages\"]==3, o[u]\n' "
             "%s/ls.json %s",
             ipkt_dir(), m.sysv_url);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tool(out, sizeof out, "ls -k sysv-msg"), 0);
    has(out, "undelivered");
    assert_int_equal(tool(out, sizeof out, "rm --stale %s", m.sysv_url), 1);
    has(out, "3 messages wait to be delivered (--force removes them)");
    assert_int_equal(tool(out, sizeof out, "rm %s", m.sysv_url), 1);
    assert_int_equal(tool(out, sizeof out, "rm --stale -k fifo -D %s", ipkt_dir()), 0);
    assert_true(msgget(ftok(m.sysv_file, 3), 0) >= 0);
    assert_int_equal(tool(out, sizeof out, "rm --force %s %s", m.sysv_url, m.mq_url), 0);
    has(out, "removed sysv:0x");
    assert_true(msgget(ftok(m.sysv_file, 3), 0) == -1 && errno == ENOENT);
    assert_true(mq_unlink(m.mq) == -1 && errno == ENOENT);
}

/* Issues 10 and 15: rm --stale run by root leaves another user's stale objects alone unless
 * --all-users is given, which only root may give. */
static void t_stale_leaves_other_users(void **state)
{
    (void)state;
    char dir[200], mine[260], theirs[260], out[4096];
    ipkt_path(dir, sizeof dir, "users");
    assert_int_equal(mkdir(dir, 0777), 0);
    ipkt_journal("path", dir);
    assert_int_equal(chmod(dir, 0777), 0);
    snprintf(mine, sizeof mine, "%s/root.fifo", dir);
    snprintf(theirs, sizeof theirs, "%s/nobody.fifo", dir);
    ipkt_journal("path", mine);
    ipkt_journal("path", theirs);
    assert_int_equal(mkfifo(mine, 0600), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(ipkt_become_nobody() == 0 && mkfifo(theirs, 0600) == 0 ? 0 : 1);
    assert_int_equal(ipkt_wait(pid), 0);
    struct stat st;
    assert_int_equal(stat(theirs, &st), 0);
    assert_true(st.st_uid != 0);
    assert_int_equal(tool(out, sizeof out, "rm --stale -k fifo -D %s", dir), 0);
    has(out, mine);
    assert_null(strstr(out, theirs));
    assert_int_equal(stat(theirs, &st), 0);
    assert_int_equal(stat(mine, &st), -1);
    /* Not root: --all-users is refused. */
    fflush(NULL);
    if ((pid = fork()) == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        if (ipkt_become_nobody() != 0)
            _exit(99);
        execl(BIN, BIN, "rm", "--stale", "--all-users", "-k", "fifo", "-D", dir, (char *)NULL);
        _exit(98);
    }
    assert_int_equal(ipkt_wait(pid), 2);
    assert_int_equal(stat(theirs, &st), 0);
    assert_int_equal(tool(out, sizeof out, "rm --stale --all-users -k fifo -D %s", dir), 0);
    has(out, theirs);
    assert_int_equal(stat(theirs, &st), -1);
}

/* Issue 11: an address is read by its transport's parser; ?xproj=3 is an unknown option, not a
 * proj=3 (the CLI's old grammar found "proj=" inside "xproj="). */
static void t_rm_uses_the_transports_grammar(void **state)
{
    (void)state;
    char file[200], url[260], out[4096];
    ipkt_path(file, sizeof file, "key");
    FILE *f = fopen(file, "we");
    assert_non_null(f);
    fclose(f);
    snprintf(url, sizeof url, "sysv:%s?proj=3", file);
    ipk_chan *q;
    ipkt_ok(ipk_listen(&q, url, NULL));
    ipkt_ok(ipk_send(q, "x", 1, 0));
    int id = msgget(ftok(file, 3), 0);
    assert_true(id >= 0);
    ipkt_journal_id("msqid", id);
    ipk_objects *l;
    ipkt_ok(ipk_objects_new(&l));
    snprintf(url, sizeof url, "sysv:%s?xproj=3", file);
    ipkt_expect(ipk_objects_resolve(l, url), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'xproj'");
    assert_int_equal(ipk_objects_count(l), 0);
    ipk_objects_free(l);
    assert_int_equal(tool(out, sizeof out, "rm '%s'", url), 2);
    has(out, "unknown option 'xproj'");
    assert_int_equal(tool(out, sizeof out, "rm --force '%s'", url), 2);
    snprintf(url, sizeof url, "sysv:%s?proj=300", file);
    assert_int_equal(tool(out, sizeof out, "rm '%s'", url), 2);
    has(out, "proj=300");
    assert_int_equal(tool(out, sizeof out, "rm 'mq:no-slash' tcp://127.0.0.1:1 unix:@x"), 2);
    assert_true(msgget(ftok(file, 3), 0) == id);
    /* Named the right way, it is found (and, held by this process, kept). */
    snprintf(url, sizeof url, "sysv:%s?proj=3", file);
    assert_int_equal(tool(out, sizeof out, "rm '%s'", url), 1);
    has(out, "in use, not removed");
    char b[4];
    assert_int_equal(ipk_recv(q, b, sizeof b, 0), 1); /* emptied, the owner's close removes it */
    ipkt_ok(ipk_close(q));
    assert_true(msgget(ftok(file, 3), 0) == -1);
}

/* What ls --json prints, rm takes: names in UTF-8 (and with spaces) come back whole. */
static void t_ls_json_round_trips_into_rm(void **state)
{
    (void)state;
    char dir[200], a[260], b[260], out[4096], cmd[1200];
    ipkt_path(dir, sizeof dir, "json");
    assert_int_equal(mkdir(dir, 0700), 0);
    ipkt_journal("path", dir);
    snprintf(a, sizeof a, "%s/\xc3\xa9t\xc3\xa9", dir); /* "été" */
    snprintf(b, sizeof b, "%s/two words", dir);
    ipkt_journal("path", a);
    ipkt_journal("path", b);
    assert_int_equal(mkfifo(a, 0600), 0);
    assert_int_equal(mkfifo(b, 0600), 0);
    snprintf(cmd, sizeof cmd,
             "%s ls --json -D %s -k fifo | python3 -c 'import json,sys,subprocess\n"
             "urls=[o[\"url\"] for o in json.load(sys.stdin)[\"objects\"]]\n"
             "assert len(urls)==2, urls\n"
             "sys.exit(subprocess.call([sys.argv[1],\"rm\",\"--stale\"]+urls))' %s",
             BIN, dir, BIN);
    assert_int_equal(system(cmd), 0);
    struct stat st;
    assert_int_equal(stat(a, &st), -1);
    assert_int_equal(stat(b, &st), -1);
    (void)out;
}

/* The registry says which kinds there are; a scheme that names no object says so. */
static void t_kinds_and_schemes(void **state)
{
    (void)state;
    static const char *const kinds[] = {"posix-mq",    "sysv-msg",  "posix-shm", "fifo",
                                        "unix-socket", "posix-sem", "sysv-shm",  "sysv-sem"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int found = 0;
        for (size_t i = 0; ipk_object_kind_at(i); i++)
            found += strcmp(ipk_object_kind_at(i), kinds[k]) == 0;
        assert_int_equal(found, 1);
    }
    ipk_objects *l;
    ipkt_ok(ipk_objects_new(&l));
    ipkt_expect(ipk_objects_resolve(l, "tcp://127.0.0.1:9"), IPK_ENOTSUP);
    ipkt_expect(ipk_objects_resolve(l, "gopher:x"), IPK_EADDR);
    ipkt_expect(ipk_objects_resolve(l, "mq:/ipkt-no-such-queue-at-all"), -ENOENT);
    ipkt_expect(ipk_objects_resolve(l, "sysv-shm:x"), IPK_EADDR);
    assert_int_equal(ipk_objects_count(l), 0);
    ipk_objects_free(l);
    /* A private System V queue has no sysv: address: it is sysv-msg:ID, found by a scan and
     * by that name, never used (unknown), and removable by name. */
    int id = msgget(IPC_PRIVATE, 0600);
    assert_true(id >= 0);
    ipkt_journal_id("msqid", id);
    char url[64];
    snprintf(url, sizeof url, "sysv-msg:%d", id);
    l = scan_dir();
    const ipk_object *o = by_url(l, url);
    assert_non_null(o);
    assert_string_equal(ipk_object_kind(o), "sysv-msg");
    assert_null(ipk_object_scheme(o));
    assert_int_equal(ipk_object_state(o), IPK_OBJ_UNKNOWN);
    ipk_objects_free(l);
    ipkt_ok(ipk_objects_new(&l));
    ipkt_ok(ipk_objects_resolve(l, url));
    assert_int_equal(ipk_objects_count(l), 1);
    ipkt_ok(ipk_object_remove(ipk_objects_at(l, 0), 0));
    ipk_objects_free(l);
    assert_int_equal(msgctl(id, IPC_STAT, &(struct msqid_ds){0}), -1);
    char out[4096];
    assert_int_equal(tool(out, sizeof out, "info --kinds"), 0);
    has(out, "unix-abstract\n");
    assert_int_equal(tool(out, sizeof out, "info --options sysv"), 0);
    has(out, "proj\n");
    assert_int_equal(tool(out, sizeof out, "info --schemes"), 0);
    has(out, "unix:@NAME\n");
}

IPKT_MAIN(cmocka_unit_test(t_scan_finds_each_kind), cmocka_unit_test(t_undelivered_needs_force),
          cmocka_unit_test(t_stale_leaves_other_users),
          cmocka_unit_test(t_rm_uses_the_transports_grammar),
          cmocka_unit_test(t_ls_json_round_trips_into_rm), cmocka_unit_test(t_kinds_and_schemes))
