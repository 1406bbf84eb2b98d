/*
 * test_security.c - what another user can do to the objects ipckit makes (issue 15, item 4):
 * every kind of object gets exactly perm= (0600 by default) whatever the umask; a symbolic link
 * or an object another user planted at a listener's name is refused and left untouched; a user
 * the mode does not admit cannot open, dial, read, inject into or remove an object, and can
 * when perm= admits it; rm and ipk_object_remove() leave other users' objects alone unless
 * root asks for all users; signals and the server's allow-lists keep other uids out.
 *
 * The tests run as root and drop to "nobody" in forked children (ipkt_become_nobody). The
 * FIFO, mq and System V squatting cases are in test_harden.c (t_squat_*).
 */
#include "cli_run.h"
#include "harness.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534u

/* ---- the kinds of object, and how the test names and inspects each ---- */

enum { NS_PATH, NS_SHM, NS_MQ, NS_SYSV };

typedef struct kind {
    const char *label;
    const char *scheme;
    int ns;
    const char *query; /* options of the kind, without perm */
    int sem;           /* shm mode=segment: a named semaphore beside the segment */
    int dial_recv;     /* a dialer receives what the listener sends */
    int creates;       /* a dialer may take create=1 (a producer that comes first) */
} kind;

static const kind kinds[] = {
    {"unix", "unix", NS_PATH, "", 0, 0},
    {"unixpacket", "unixpacket", NS_PATH, "", 0, 0},
    {"unixgram", "unixgram", NS_PATH, "", 0, 0},
    {"fifo", "fifo", NS_PATH, "", 0, 0},
    {"file log", "file", NS_PATH, "", 0, 1},
    {"file whole", "file", NS_PATH, "mode=whole", 0, 0},
    {"mq", "mq", NS_MQ, "", 0, 1, 1},
    {"sysv", "sysv", NS_SYSV, "", 0, 1, 1},
    {"shm ring", "shm", NS_SHM, "size=4k", 0, 0},
    {"shm multi", "shm", NS_SHM, "size=4k&multi=1", 0, 0},
    {"shm duplex", "shm", NS_SHM, "size=4k&duplex=1", 0, 1},
    {"shm segment", "shm", NS_SHM, "mode=segment", 1, 0},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

typedef struct obj {
    const kind *k;
    char name[200]; /* path, "/NAME" or the System V key in decimal */
    char fs[240];   /* the file that is the object (paths, /dev/shm), "" for mq and sysv */
    char sem[80];   /* mode=segment: the semaphore's name, and its file */
    char semfs[120];
    key_t key;
    char url[320]; /* without options */
} obj;

/* A fresh name for an object of kind k; path objects go in dir (NULL: the test directory). */
static void obj_init(obj *o, const kind *k, const char *dir)
{
    static unsigned seq;
    char n[64];
    memset(o, 0, sizeof *o);
    o->k = k;
    ipkt_name(n, sizeof n, "/");
    if (k->ns == NS_PATH) {
        snprintf(o->name, sizeof o->name, "%s%s", dir ? dir : ipkt_dir(), n);
        snprintf(o->fs, sizeof o->fs, "%s", o->name);
        ipkt_journal("path", o->name);
    } else if (k->ns == NS_SHM || k->ns == NS_MQ) {
        snprintf(o->name, sizeof o->name, "%s", n);
        ipkt_journal(k->ns == NS_SHM ? "shm" : "mq", o->name);
        if (k->ns == NS_SHM)
            snprintf(o->fs, sizeof o->fs, "/dev/shm%s", n);
    } else {
        o->key = (key_t)(0x7d000000 | ((getpid() & 0xfffff) << 4) | (++seq & 0xf));
        msgctl(msgget(o->key, 0), IPC_RMID, NULL); /* a leftover of an earlier run */
        snprintf(o->name, sizeof o->name, "%d", (int)o->key);
    }
    if (k->sem) {
        snprintf(o->sem, sizeof o->sem, "%s-sem", n);
        snprintf(o->semfs, sizeof o->semfs, "/dev/shm/sem.%s", o->sem + 1);
        ipkt_journal("sem", o->sem);
    }
    snprintf(o->url, sizeof o->url, "%s:%s", k->scheme, o->name);
}

/* The address with the kind's options, perm= (NULL: none) and more (NULL: none). */
static const char *obj_url(const obj *o, const char *perm, const char *more, char *buf, size_t cap)
{
    const char *parts[4] = {o->k->query[0] ? o->k->query : NULL, NULL, NULL, more};
    char p[32], s[100];
    if (perm) {
        snprintf(p, sizeof p, "perm=%s", perm);
        parts[1] = p;
    }
    if (o->k->sem) {
        snprintf(s, sizeof s, "sem=%s", o->sem);
        parts[2] = s;
    }
    size_t n = (size_t)snprintf(buf, cap, "%s", o->url);
    char sep = '?';
    for (int i = 0; i < 4; i++)
        if (parts[i]) {
            n += (size_t)snprintf(buf + n, cap - n, "%c%s", sep, parts[i]);
            sep = '&';
        }
    return buf;
}

/* Owner and mode of the object (lstat for files); 0, or -1 when it is not there. */
static int obj_stat(const obj *o, struct stat *st)
{
    memset(st, 0, sizeof *st);
    if (o->k->ns == NS_PATH || o->k->ns == NS_SHM)
        return lstat(o->fs, st);
    if (o->k->ns == NS_MQ) { /* /dev/mqueue is not mounted here: ask a descriptor */
        mqd_t q = mq_open(o->name, O_RDONLY | O_CLOEXEC);
        if (q == (mqd_t)-1)
            return -1;
        int r = fstat(q, st);
        mq_close(q);
        return r;
    }
    struct msqid_ds ds;
    int id = msgget(o->key, 0);
    if (id < 0 || msgctl(id, IPC_STAT, &ds) != 0)
        return -1;
    st->st_uid = ds.msg_perm.uid;
    st->st_mode = ds.msg_perm.mode & 0777;
    st->st_ino = (ino_t)id;
    return 0;
}

static void obj_journal(const obj *o)
{
    if (o->k->ns == NS_SYSV)
        ipkt_journal_id("msqid", msgget(o->key, 0));
}

/* Removes whatever is at the object's name (and its semaphore). */
static void obj_remove(const obj *o)
{
    if (o->k->ns == NS_PATH)
        unlink(o->name);
    else if (o->k->ns == NS_SHM)
        shm_unlink(o->name);
    else if (o->k->ns == NS_MQ)
        mq_unlink(o->name);
    else
        msgctl(msgget(o->key, 0), IPC_RMID, NULL);
    if (o->k->sem)
        sem_unlink(o->sem);
}

static void expect_mode(const char *what, const char *url, const char *path, const struct stat *st,
                        unsigned want)
{
    if ((st->st_mode & 07777) != want)
        fail_msg("%s (%s): %s has mode %04o, expected %04o", what, url, path,
                 (unsigned)(st->st_mode & 07777), want);
}

/* ---- 0600 by default, perm= exactly, whatever the umask ---- */

static void t_perm_exact(void **state)
{
    (void)state;
    static const mode_t masks[] = {0, 022, 077};
    static const struct {
        const char *perm;
        unsigned mode;
    } perms[] = {{NULL, 0600}, {"0640", 0640}, {"0666", 0666}, {"0604", 0604}};
    for (size_t k = 0; k < NKINDS; k++)
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++)
            for (size_t p = 0; p < sizeof perms / sizeof perms[0]; p++) {
                obj o;
                char url[400];
                obj_init(&o, &kinds[k], NULL);
                obj_url(&o, perms[p].perm, NULL, url, sizeof url);
                umask(masks[m]);
                ipk_chan *c = NULL;
                ipkt_ok(ipk_listen(&c, url, NULL));
                obj_journal(&o);
                struct stat st;
                assert_int_equal(obj_stat(&o, &st), 0);
                assert_int_equal(st.st_uid, 0);
                expect_mode(kinds[k].label, url, o.name, &st, perms[p].mode);
                if (o.k->sem) { /* the side object gets the same mode */
                    assert_int_equal(lstat(o.semfs, &st), 0);
                    expect_mode(kinds[k].label, url, o.semfs, &st, perms[p].mode);
                }
                ipkt_ok(ipk_close(c));
                assert_int_not_equal(obj_stat(&o, &st), 0); /* and its creator removed it */
            }
}

/* ---- symbolic links at a listener's (and a dialer's) name ---- */

/* What a planted link points to: a file of root's that must come out unchanged. */
typedef struct target {
    char path[240];
    struct stat st;
} target;

static void target_make(target *t, int in_shm)
{
    char n[64];
    if (in_shm) {
        ipkt_name(n, sizeof n, "/");
        snprintf(t->path, sizeof t->path, "/dev/shm%s", n);
        ipkt_journal("shm", n);
    } else {
        ipkt_path(t->path, sizeof t->path, "target");
        ipkt_journal("path", t->path);
    }
    int fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "root's own file", 15), 15);
    close(fd);
    assert_int_equal(lstat(t->path, &t->st), 0);
}

static void target_unchanged(const target *t)
{
    struct stat st;
    char buf[64];
    assert_int_equal(lstat(t->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_ino, t->st.st_ino);
    assert_int_equal(st.st_mode, t->st.st_mode);
    assert_int_equal(st.st_uid, t->st.st_uid);
    ipkt_slurp(t->path, buf, sizeof buf);
    assert_string_equal(buf, "root's own file");
}

static void link_still_there(const char *path, const char *to)
{
    char buf[256];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, to);
}

/* A link at the name of every kind that lives in a file system: listen is refused with -ELOOP
 * and "symbolic link", and neither the link nor what it points to changes. Dial is refused too
 * where ipckit opens the name itself (FIFO, file, shm); connect() to a socket path follows links
 * in the kernel (docs/RELIABILITY.md). */
static void t_symlink_refused(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS; k++) {
        const kind *kd = &kinds[k];
        if (kd->ns != NS_PATH && kd->ns != NS_SHM)
            continue;
        obj o;
        target t;
        char url[400];
        obj_init(&o, kd, NULL);
        target_make(&t, kd->ns == NS_SHM);
        assert_int_equal(symlink(t.path, o.fs), 0);
        ipk_chan *c = NULL;
        obj_url(&o, NULL, NULL, url, sizeof url);
        ipkt_expect(ipk_listen(&c, url, NULL), -ELOOP);
        ipkt_errmsg_has("symbolic link");
        obj_url(&o, "0666", NULL, url, sizeof url); /* no perm= makes a link acceptable */
        ipkt_expect(ipk_listen(&c, url, NULL), -ELOOP);
        if (strcmp(kd->scheme, "unix") != 0 && strcmp(kd->scheme, "unixpacket") != 0 &&
            strcmp(kd->scheme, "unixgram") != 0) {
            obj_url(&o, NULL, strcmp(kd->scheme, "fifo") == 0 ? "wait=0" : NULL, url, sizeof url);
            ipkt_expect(ipk_dial(&c, url, NULL), -ELOOP);
            ipkt_errmsg_has("symbolic link");
        }
        link_still_there(o.fs, t.path);
        target_unchanged(&t);
        unlink(o.fs);
    }
    /* The dangerous FIFO case: a link to a FIFO of root's own, which would pass the owner and
     * mode checks had the link been followed (the listener then read root's other FIFO). */
    char fifo[256], link[256], url[300];
    ipkt_path(fifo, sizeof fifo, "root-fifo");
    ipkt_journal("path", fifo);
    ipkt_path(link, sizeof link, "link");
    ipkt_journal("path", link);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(symlink(fifo, link), 0);
    snprintf(url, sizeof url, "fifo:%s", link);
    ipk_chan *c = NULL;
    ipkt_expect(ipk_listen(&c, url, NULL), -ELOOP);
    snprintf(url, sizeof url, "fifo:%s?wait=0", link);
    ipkt_expect(ipk_dial(&c, url, NULL), -ELOOP);
    link_still_there(link, fifo);
    /* mode=segment's semaphore: a link at /dev/shm/sem.NAME. */
    obj o;
    target t;
    obj_init(&o, &kinds[NKINDS - 1], NULL);
    assert_true(o.k->sem);
    target_make(&t, 1);
    assert_int_equal(symlink(t.path, o.semfs), 0);
    obj_url(&o, NULL, NULL, url, sizeof url);
    ipkt_expect(ipk_listen(&c, url, NULL), -ELOOP);
    ipkt_errmsg_has("symbolic link");
    link_still_there(o.semfs, t.path);
    target_unchanged(&t);
    struct stat st;
    assert_int_not_equal(obj_stat(&o, &st), 0); /* the segment made for it went again */
    unlink(o.semfs);
}

/* POSIX queue names have no '/' after the first, and the mqueue file system takes no links
 * (nor FIFOs): the kernel refuses to plant one. Checked on a private mount of the queue file
 * system, in a mount name space of this test process alone, so nothing outlives it. */
static void t_mqueue_no_symlink(void **state)
{
    (void)state;
    char dir[256], at[480], url[300];
    ipkt_path(dir, sizeof dir, "mqueue");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(unshare(CLONE_NEWNS), 0);
    assert_int_equal(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0);
    assert_int_equal(mount("none", dir, "mqueue", 0, NULL), 0);
    obj o;
    obj_init(&o, &kinds[6], NULL);
    assert_int_equal(o.k->ns, NS_MQ);
    snprintf(at, sizeof at, "%s%s", dir, o.name);
    errno = 0;
    assert_int_equal(symlink("/tmp", at), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(mkfifo(at, 0600), -1);
    /* The mount shows the queues of this IPC name space: a listener's queue appears there with
     * its mode (so the refusal above was made by the file system that holds them). */
    ipk_chan *c = NULL;
    obj_url(&o, NULL, NULL, url, sizeof url);
    ipkt_ok(ipk_listen(&c, url, NULL));
    struct stat st;
    assert_int_equal(lstat(at, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    ipkt_ok(ipk_close(c));
    assert_int_equal(umount(dir), 0);
}

/* ---- objects another user planted at a listener's name ---- */

/* A directory anyone may create in, sticky like /tmp (nobody cannot reach into ipkt_dir). */
static const char *pub_dir(char *buf, size_t cap, mode_t mode)
{
    ipkt_path(buf, cap, "pub");
    assert_int_equal(mkdir(buf, 0700), 0);
    assert_int_equal(chmod(buf, mode), 0);
    return buf;
}

typedef struct plant {
    const obj *o;
    int how; /* PL_* */
} plant;

enum { PL_OBJECT, PL_STALE_RING, PL_SEM };

/* Binds a Unix socket of the kind's type at path and closes it: a stale socket file. */
static int stale_socket(const char *path, int type)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    IPKT_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    close(fd);
    return 0;
}

/* As nobody, with umask 0: makes an object 0666 (or 0777 for a socket file) at the name. */
static int plant_as_nobody(void *arg)
{
    const plant *p = arg;
    const obj *o = p->o;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    umask(0);
    char url[400];
    ipk_chan *c = NULL;
    if (p->how == PL_SEM) {
        sem_t *s = sem_open(o->sem, O_CREAT | O_EXCL, 0666, 0);
        IPKT_CHECK(s != SEM_FAILED);
        sem_close(s);
        return 0;
    }
    if (p->how == PL_STALE_RING) { /* a ring whose owner dies without closing it */
        IPKT_CHECK(ipk_listen(&c, obj_url(o, "0666", NULL, url, sizeof url), NULL) == 0);
        _exit(0);
    }
    const char *s = o->k->scheme;
    if (strcmp(s, "unix") == 0)
        return stale_socket(o->name, SOCK_STREAM);
    if (strcmp(s, "unixpacket") == 0)
        return stale_socket(o->name, SOCK_SEQPACKET);
    if (strcmp(s, "unixgram") == 0)
        return stale_socket(o->name, SOCK_DGRAM);
    if (strcmp(s, "file") == 0) { /* a log that holds a record of nobody's */
        IPKT_CHECK(ipk_listen(&c, obj_url(o, "0666", "keep=1", url, sizeof url), NULL) == 0);
        IPKT_CHECK(ipk_send(c, "planted", 7, -1) == 0);
        return ipk_close(c) == 0 ? 0 : 1;
    }
    /* shm: a plain 0666 file that is no ring */
    int fd = shm_open(o->name, O_RDWR | O_CREAT | O_EXCL, 0666);
    IPKT_CHECK(fd >= 0 && ftruncate(fd, 4096) == 0);
    close(fd);
    return 0;
}

/* Root's listener at a name where nobody's object is: -EEXIST "belongs to uid 65534", with any
 * perm=, and nobody's object is still there, the same one. */
static void refused_and_kept(const obj *o, const char *file, const char *semfile)
{
    struct stat before, after;
    assert_int_equal(lstat(file, &before), 0);
    assert_int_equal(before.st_uid, NOBODY);
    char url[400];
    ipk_chan *c = NULL;
    const char *perms[] = {NULL, "0666", "0777"};
    for (int i = 0; i < 3; i++) {
        obj_url(o, perms[i], NULL, url, sizeof url);
        ipkt_expect(ipk_listen(&c, url, NULL), -EEXIST);
        ipkt_errmsg_has("belongs to uid 65534");
    }
    assert_int_equal(lstat(file, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_uid, NOBODY);
    assert_int_equal(after.st_mode, before.st_mode);
    if (semfile) { /* the segment the failed listens made went again; nobody's semaphore stays */
        struct stat st;
        assert_int_not_equal(lstat(o->fs, &st), 0);
    }
}

/* Socket files, file logs, shm segments (a stale ring of nobody's, or any file) and a segment's
 * semaphore that nobody made: refused. A stale socket file or ring of root's own is replaced,
 * so only the owner check stands between root's listener and nobody's object. */
static void t_planted_other_user(void **state)
{
    (void)state;
    char dir[256];
    pub_dir(dir, sizeof dir, 01777);
    for (size_t k = 0; k < NKINDS; k++) {
        const kind *kd = &kinds[k];
        if (kd->ns != NS_PATH && kd->ns != NS_SHM)
            continue;
        if (strcmp(kd->scheme, "fifo") == 0)
            continue; /* test_harden.c: t_squat_other_user */
        obj o;
        obj_init(&o, kd, dir);
        plant p = {&o, kd->sem ? PL_SEM : PL_OBJECT};
        assert_int_equal(ipkt_wait(ipkt_spawn(plant_as_nobody, &p)), 0);
        refused_and_kept(&o, kd->sem ? o.semfs : o.fs, kd->sem ? o.semfs : NULL);
        if (kd->ns == NS_SHM && !kd->sem) {
            obj_remove(&o);
            /* A ring of nobody's whose owner died: root's listener replaced it (unlinking
             * nobody's segment), as it replaces a stale ring of root's own. */
            p.how = PL_STALE_RING;
            assert_int_equal(ipkt_wait(ipkt_spawn(plant_as_nobody, &p)), 0);
            refused_and_kept(&o, o.fs, NULL);
        }
        obj_remove(&o);
    }
}

/* The listener's object was removed behind its back and nobody made one at the name: root's
 * close removed nobody's file log, segment or semaphore (test_harden.c: FIFO, mq, sysv). */
static void t_close_replaced(void **state)
{
    (void)state;
    char dir[256], url[400];
    pub_dir(dir, sizeof dir, 01777);
    for (size_t k = 0; k < NKINDS; k++) {
        const kind *kd = &kinds[k];
        if ((kd->ns != NS_PATH && kd->ns != NS_SHM) || strcmp(kd->scheme, "fifo") == 0)
            continue;
        obj o;
        obj_init(&o, kd, dir);
        ipk_chan *c = NULL;
        ipkt_ok(ipk_listen(&c, obj_url(&o, NULL, NULL, url, sizeof url), NULL));
        plant p = {&o, kd->sem ? PL_SEM : PL_OBJECT};
        const char *file = kd->sem ? o.semfs : o.fs;
        if (kd->sem)
            assert_int_equal(sem_unlink(o.sem), 0);
        else
            assert_int_equal(unlink(o.fs), 0);
        assert_int_equal(ipkt_wait(ipkt_spawn(plant_as_nobody, &p)), 0);
        ipk_close(c);
        struct stat st;
        if (lstat(file, &st) != 0 || st.st_uid != NOBODY)
            fail_msg("%s: root's close removed nobody's %s", kd->label, file);
        obj_remove(&o);
    }
}

/* Stale objects of root's own: a socket file and a ring are replaced (the new object has
 * exactly perm), a file log or a semaphore wider than perm is refused unless perm= says so. */
static int listen_and_die(void *arg)
{
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_listen(&c, arg, NULL) == 0);
    _exit(0);
}

static void t_planted_own_wider(void **state)
{
    (void)state;
    char url[400];
    struct stat st;
    ipk_chan *c = NULL;
    for (size_t k = 0; k < NKINDS; k++) {
        const kind *kd = &kinds[k];
        obj o;
        obj_init(&o, kd, NULL);
        if (kd->ns == NS_PATH && strcmp(kd->scheme, "file") != 0 &&
            strcmp(kd->scheme, "fifo") != 0) {
            umask(0);
            assert_int_equal(stale_socket(o.name, SOCK_STREAM), 0);
            umask(022);
            assert_int_equal(lstat(o.name, &st), 0);
            assert_int_equal(st.st_mode & 0777, 0777);
            ipkt_ok(ipk_listen(&c, obj_url(&o, NULL, NULL, url, sizeof url), NULL));
            assert_int_equal(obj_stat(&o, &st), 0);
            expect_mode(kd->label, url, o.name, &st, 0600);
            ipkt_ok(ipk_close(c));
        } else if (strcmp(kd->scheme, "file") == 0) {
            ipkt_ok(ipk_listen(&c, obj_url(&o, "0666", "keep=1", url, sizeof url), NULL));
            ipkt_ok(ipk_close(c));
            ipkt_expect(ipk_listen(&c, obj_url(&o, NULL, NULL, url, sizeof url), NULL), -EEXIST);
            ipkt_errmsg_has("wider than perm=0600");
            ipkt_ok(ipk_listen(&c, obj_url(&o, "0666", NULL, url, sizeof url), NULL));
            ipkt_ok(ipk_close(c));
        } else if (kd->ns == NS_SHM && !kd->sem) {
            obj_url(&o, "0666", NULL, url, sizeof url);
            assert_int_equal(ipkt_wait(ipkt_spawn(listen_and_die, url)), 0);
            ipkt_ok(ipk_listen(&c, obj_url(&o, NULL, NULL, url, sizeof url), NULL));
            assert_int_equal(obj_stat(&o, &st), 0);
            expect_mode(kd->label, url, o.fs, &st, 0600);
            ipkt_ok(ipk_close(c));
        } else if (kd->sem) {
            sem_t *s = sem_open(o.sem, O_CREAT | O_EXCL, 0600, 0);
            assert_true(s != SEM_FAILED);
            sem_close(s);
            assert_int_equal(chmod(o.semfs, 0666), 0);
            ipkt_expect(ipk_listen(&c, obj_url(&o, NULL, NULL, url, sizeof url), NULL), -EEXIST);
            ipkt_errmsg_has("wider than perm=0600");
            ipkt_ok(ipk_listen(&c, obj_url(&o, "0666", NULL, url, sizeof url), NULL));
            ipkt_ok(ipk_close(c));
        }
        obj_remove(&o);
    }
}

/* ---- another user: kept out by the mode, let in by perm= ---- */

typedef struct access_arg {
    const obj *o;
    int allowed; /* perm=0666 */
} access_arg;

/* As nobody. Without leave: dial is -EACCES, a listen at the name is refused, removal through
 * the objects API is -EPERM and ipckit rm fails. With perm=0666: dial works, the listener's
 * message is received (where a dialer receives) and one is injected; removal is still refused. */
static int access_as_nobody(void *arg)
{
    const access_arg *a = arg;
    const obj *o = a->o;
    const kind *k = o->k;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    char url[400], buf[64];
    ipk_chan *c = NULL;
    int fifo = strcmp(k->scheme, "fifo") == 0;
    obj_url(o, NULL, fifo ? "wait=0" : NULL, url, sizeof url);
    int r = ipk_dial(&c, url, NULL);
    if (!a->allowed) {
        if (r != -EACCES)
            fprintf(stderr, "%s: dial as nobody = %d (%s)\n", url, r, ipk_errmsg());
        IPKT_CHECK(r == -EACCES);
    } else {
        if (r != 0)
            fprintf(stderr, "%s: dial as nobody = %d (%s)\n", url, r, ipk_errmsg());
        IPKT_CHECK(r == 0);
        if (k->dial_recv) {
            long n = ipk_recv(c, buf, sizeof buf, 10000);
            IPKT_CHECK(n == 9 && memcmp(buf, "from-root", 9) == 0);
        }
        IPKT_CHECK(ipk_send(c, "from-nobody", 11, 10000) == 0);
        IPKT_CHECK(ipk_close(c) == 0);
        if (k->creates) { /* a producer that would have created the queue, and the tool's send */
            obj_url(o, NULL, "create=1", url, sizeof url);
            r = ipk_dial(&c, url, NULL);
            if (r != 0)
                fprintf(stderr, "%s: dial as nobody = %d (%s)\n", url, r, ipk_errmsg());
            IPKT_CHECK(r == 0 && ipk_send(c, "from-nobody", 11, 10000) == 0);
            IPKT_CHECK(ipk_close(c) == 0);
            char cmd[600], line[256];
            snprintf(cmd, sizeof cmd, "%s send '%s' from-nobody 2>&1", BIN, o->url);
            int st = ipkt_run_line(cmd, line, sizeof line);
            if (st != 0)
                fprintf(stderr, "ipckit send %s as nobody: %s\n", o->url, line);
            IPKT_CHECK(st == 0);
        }
    }
    /* Listening at its name, to read what others send to root: refused - by the mode, or, when
     * the mode would let it open the object, because the object is root's (never adopted). */
    obj_url(o, "0666", NULL, url, sizeof url);
    r = ipk_listen(&c, url, NULL);
    if (a->allowed ? r != -EEXIST || strstr(ipk_errmsg(), "belongs to uid 0") == NULL
                   : r != -EEXIST && r != -EACCES)
        fprintf(stderr, "%s: listen as nobody = %d (%s)\n", url, r, ipk_errmsg());
    IPKT_CHECK(a->allowed ? r == -EEXIST : r == -EEXIST || r == -EACCES);
    /* Removing it: refused by the library (the kernel would refuse too, for other reasons). */
    ipk_objects *l = NULL;
    IPKT_CHECK(ipk_objects_new(&l) == 0);
    r = ipk_objects_resolve(l, o->url);
    if (r == 0 && ipk_objects_count(l) > 0) {
        r = ipk_object_remove(ipk_objects_at(l, 0), IPK_OBJ_FORCE);
        if (r != -EPERM || strstr(ipk_errmsg(), "belongs to uid 0") == NULL)
            fprintf(stderr, "%s: remove as nobody = %d (%s)\n", o->url, r, ipk_errmsg());
        IPKT_CHECK(r == -EPERM);
    } else if (strcmp(k->scheme, "file") == 0) {
        IPKT_CHECK(r == IPK_ENOTSUP); /* a file log is not a kernel object the API removes */
    } else {
        IPKT_CHECK(r == -EACCES); /* not even readable: a queue or segment of mode 0600 */
    }
    ipk_objects_free(l);
    char cmd[600], line[256];
    snprintf(cmd, sizeof cmd, "%s rm --force '%s' 2>&1", BIN, o->url);
    int st = ipkt_run_line(cmd, line, sizeof line);
    if (st == 0)
        fprintf(stderr, "ipckit rm %s as nobody succeeded: %s\n", o->url, line);
    IPKT_CHECK(st != 0);
    return 0;
}

/* Receives one message as root from the listener l of kind k: accepts first where the kind
 * has connections, skips root's own record in a file log. */
static void root_receives(const obj *o, ipk_chan *l, const char *want)
{
    char buf[64];
    ipk_msginfo mi;
    ipk_chan *p = l;
    int accepts = strcmp(o->k->scheme, "unix") == 0 || strcmp(o->k->scheme, "unixpacket") == 0;
    if (accepts)
        ipkt_ok(ipk_accept(l, &p, 10000));
    long n = ipk_recvx(p, buf, sizeof buf, &mi, 10000);
    if (o->k->dial_recv && strcmp(o->k->scheme, "file") == 0 && n == 9) /* root's own record */
        n = ipk_recvx(p, buf, sizeof buf, &mi, 10000);
    ipkt_expect(n, (long)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
    if (o->k->ns == NS_PATH && strcmp(o->k->scheme, "unixgram") == 0)
        assert_int_equal(mi.uid, NOBODY); /* the sender's credentials came with it */
    if (accepts)
        ipkt_ok(ipk_close(p));
}

static void t_other_user_access(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS; k++) {
        for (int allowed = 0; allowed < 2; allowed++) {
            obj o;
            char url[400];
            struct stat before, after;
            obj_init(&o, &kinds[k], NULL);
            umask(022);
            ipk_chan *l = NULL;
            ipkt_ok(
                ipk_listen(&l, obj_url(&o, allowed ? "0666" : NULL, NULL, url, sizeof url), NULL));
            obj_journal(&o);
            if (allowed && o.k->dial_recv)
                ipkt_ok(ipk_send(l, "from-root", 9, 10000));
            assert_int_equal(obj_stat(&o, &before), 0);
            access_arg a = {&o, allowed};
            if (ipkt_wait(ipkt_spawn(access_as_nobody, &a)) != 0)
                fail_msg("%s (%s): as nobody, see above", o.k->label, url);
            for (int i = 0; allowed && i < (o.k->creates ? 3 : 1); i++)
                root_receives(&o, l, "from-nobody");
            /* Still there, the same object, root's. */
            assert_int_equal(obj_stat(&o, &after), 0);
            assert_int_equal(after.st_ino, before.st_ino);
            assert_int_equal(after.st_uid, 0);
            ipk_close(l);
            obj_remove(&o);
        }
    }
}

/* ---- a poller's wake-up socket (shm): abstract, so anyone may write to it ---- */

/* The abstract name of this process's shm wake-up socket, from /proc/net/unix. */
static int wake_name(char *name, size_t cap)
{
    char want[64], line[512];
    snprintf(want, sizeof want, "@ipk-shm-poll-%d-", (int)getpid());
    FILE *f = fopen("/proc/net/unix", "re");
    if (f == NULL)
        return -1;
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        char *at = strstr(line, want);
        if (at != NULL) {
            at[strcspn(at, "\n")] = '\0';
            snprintf(name, cap, "%s", at);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* As nobody: three datagrams to the wake-up socket; each must reach it. */
static int wake_as_nobody(void *arg)
{
    const char *name = arg; /* "@ipk-shm-poll-..." */
    IPKT_CHECK(ipkt_become_nobody() == 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name + 1);
    memcpy(a.sun_path + 1, name + 1, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    IPKT_CHECK(fd >= 0);
    for (int i = 0; i < 3; i++)
        IPKT_CHECK(sendto(fd, "x", 1, 0, (struct sockaddr *)&a, len) == 1);
    close(fd);
    return 0;
}

/* An abstract socket has no mode: another user can write to a poller's wake-up socket. The
 * bytes only wake the poller, which then looks at the ring itself: no event is invented. */
static void t_shm_wake_socket(void **state)
{
    (void)state;
    obj o;
    char url[400], name[128], buf[16];
    obj_init(&o, &kinds[8], NULL);
    assert_int_equal(o.k->ns, NS_SHM);
    ipk_chan *rx = NULL, *tx = NULL;
    ipkt_ok(ipk_listen(&rx, obj_url(&o, NULL, NULL, url, sizeof url), NULL));
    ipk_poller *p = NULL;
    ipk_pollev ev[4];
    ipkt_ok(ipk_poller_new(&p));
    ipkt_ok(ipk_poller_add(p, rx, IPK_POLLIN, NULL));
    ipkt_expect(ipk_poller_wait(p, ev, 4, 0), -EAGAIN); /* armed: the socket is bound */
    assert_int_equal(wake_name(name, sizeof name), 0);
    assert_int_equal(ipkt_wait(ipkt_spawn(wake_as_nobody, name)), 0);
    ipkt_expect(ipk_poller_wait(p, ev, 4, 100), IPK_ETIMEDOUT);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), -EAGAIN);
    /* A real message is still reported. */
    ipkt_ok(ipk_dial(&tx, o.url, NULL));
    ipkt_ok(ipk_send(tx, "real", 4, 1000));
    ipkt_expect(ipk_poller_wait(p, ev, 4, 10000), 1);
    assert_true(ev[0].chan == rx && (ev[0].events & IPK_POLLIN));
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), 4);
    ipk_poller_free(p);
    ipkt_ok(ipk_close(tx));
    ipkt_ok(ipk_close(rx));
}

/* ---- ipckit rm and ipk_object_remove(): other users' objects ---- */

static int mkfifo_nobody(void *arg)
{
    IPKT_CHECK(ipkt_become_nobody() == 0);
    IPKT_CHECK(mkfifo(arg, 0600) == 0);
    return 0;
}

static void fifo_as(const char *path, int nobody)
{
    ipkt_journal("path", path);
    if (nobody)
        assert_int_equal(ipkt_wait(ipkt_spawn(mkfifo_nobody, (void *)path)), 0);
    else
        assert_int_equal(mkfifo(path, 0600), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

typedef struct rm_arg {
    const char *dir, *mine, *roots;
} rm_arg;

static int rm_as_nobody(void *arg)
{
    const rm_arg *a = arg;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    char cmd[1200], line[512];
    /* --stale: nobody's own objects only (the directory would let it unlink root's FIFO). */
    snprintf(cmd, sizeof cmd, "%s rm --stale -D '%s' -k fifo 2>&1", BIN, a->dir);
    int st = ipkt_run_line(cmd, line, sizeof line);
    IPKT_CHECK(st == 0);
    IPKT_CHECK(exists(a->roots));
    /* --all-users is root's. */
    snprintf(cmd, sizeof cmd, "%s rm --stale --all-users -D '%s' -k fifo 2>&1", BIN, a->dir);
    st = ipkt_run_line(cmd, line, sizeof line);
    IPKT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    IPKT_CHECK(strstr(line, "only root") != NULL);
    IPKT_CHECK(exists(a->roots));
    /* Root's FIFO by name: refused, by the tool and by the library, even with every flag. */
    snprintf(cmd, sizeof cmd, "%s rm --force 'fifo:%s' 2>&1", BIN, a->roots);
    st = ipkt_run_line(cmd, line, sizeof line);
    IPKT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    IPKT_CHECK(strstr(line, "belongs to uid 0") != NULL);
    IPKT_CHECK(exists(a->roots));
    ipk_objects *l = NULL;
    char url[300];
    snprintf(url, sizeof url, "fifo:%s", a->roots);
    IPKT_CHECK(ipk_objects_new(&l) == 0 && ipk_objects_resolve(l, url) == 0);
    IPKT_CHECK(ipk_object_remove(ipk_objects_at(l, 0), IPK_OBJ_FORCE) == -EPERM);
    IPKT_CHECK(strstr(ipk_errmsg(), "belongs to uid 0") != NULL);
    ipk_objects_free(l);
    IPKT_CHECK(exists(a->roots));
    /* Its own, by name: removed (so the refusals above are not vacuous). */
    snprintf(cmd, sizeof cmd, "%s rm 'fifo:%s' 2>&1", BIN, a->mine);
    st = ipkt_run_line(cmd, line, sizeof line);
    IPKT_CHECK(st == 0);
    IPKT_CHECK(!exists(a->mine));
    return 0;
}

/* In a directory anyone may write and that is not sticky, the kernel lets any user unlink any
 * FIFO: only ipckit's owner rule keeps nobody from root's FIFO there, and root from nobody's
 * unless it asks for all users. */
static void t_rm_other_users(void **state)
{
    (void)state;
    char dir[256], roots[300], mine[300];
    pub_dir(dir, sizeof dir, 0777);
    snprintf(roots, sizeof roots, "%s/root-fifo", dir);
    snprintf(mine, sizeof mine, "%s/nobody-fifo", dir);
    fifo_as(roots, 0);
    fifo_as(mine, 1);
    rm_arg a = {dir, mine, roots};
    assert_int_equal(ipkt_wait(ipkt_spawn(rm_as_nobody, &a)), 0);
    assert_true(exists(roots));
    fifo_as(mine, 1);
    /* Root, --stale without --all-users: its own stale FIFO goes, nobody's stays. */
    run r;
    CLI(&r, NULL, "rm", "--stale", "-D", dir, "-k", "fifo");
    assert_int_equal(r.rc, 0);
    has(r.out, roots);
    assert_false(exists(roots));
    assert_true(exists(mine));
    /* The library, as root: nobody's object is refused without IPK_OBJ_ALL_USERS. */
    const char *dirs[] = {dir, NULL};
    ipk_objects *l = NULL;
    ipkt_ok(ipk_objects_new(&l));
    ipkt_ok(ipk_objects_scan(l, dirs));
    const ipk_object *o = NULL;
    for (size_t i = 0; i < ipk_objects_count(l); i++)
        if (strcmp(ipk_object_name(ipk_objects_at(l, i)), mine) == 0)
            o = ipk_objects_at(l, i);
    assert_non_null(o);
    assert_int_equal(ipk_object_uid(o), NOBODY);
    assert_int_equal(ipk_object_state(o), IPK_OBJ_STALE);
    ipkt_expect(ipk_object_remove(o, IPK_OBJ_FORCE), -EPERM);
    ipkt_errmsg_has("belongs to uid 65534");
    assert_true(exists(mine));
    ipk_objects_free(l);
    /* --all-users: root takes it. */
    CLI(&r, NULL, "rm", "--stale", "--all-users", "-D", dir, "-k", "fifo");
    assert_int_equal(r.rc, 0);
    has(r.out, mine);
    assert_false(exists(mine));
    /* And the library with IPK_OBJ_ALL_USERS. */
    fifo_as(mine, 1);
    char url[320];
    snprintf(url, sizeof url, "fifo:%s", mine);
    ipkt_ok(ipk_objects_new(&l));
    ipkt_ok(ipk_objects_resolve(l, url));
    ipkt_ok(ipk_object_remove(ipk_objects_at(l, 0), IPK_OBJ_ALL_USERS));
    ipk_objects_free(l);
    assert_false(exists(mine));
}

/* ---- signal: other uids dropped unless allow_uid= names them ---- */

typedef struct sigrx {
    const char *query;
    int ready[2];
    int expect_root; /* 1: root's signal arrives; 0: it is dropped */
} sigrx;

static int sig_receiver(void *arg)
{
    sigrx *r = arg;
    close(r->ready[0]);
    IPKT_CHECK(ipkt_become_nobody() == 0);
    char url[100], buf[16];
    snprintf(url, sizeof url, "signal:self%s", r->query);
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_listen(&c, url, NULL) == 0);
    IPKT_CHECK(write(r->ready[1], "r", 1) == 1);
    ipk_msginfo mi;
    /* Root sends "root" and then, from a child that became nobody, "nobody" arrives: whatever
     * comes first tells whether root's was dropped. */
    long n = ipk_recvx(c, buf, sizeof buf, &mi, 30000);
    if (r->expect_root) {
        IPKT_CHECK(n == 4 && memcmp(buf, "root", 4) == 0 && mi.uid == 0);
    } else {
        IPKT_CHECK(n == 6 && memcmp(buf, "nobody", 6) == 0 && mi.uid == NOBODY);
        IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 0) == -EAGAIN);
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

static int sig_send_nobody(void *arg)
{
    IPKT_CHECK(ipkt_become_nobody() == 0);
    char url[64];
    snprintf(url, sizeof url, "signal:%d", *(pid_t *)arg);
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "nobody", 6, -1) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* test_signal.c covers no allow_uid= (root dropped) and allow_uid=0; here allow_uid= naming a
 * third uid still drops root's, and allow_uid=any lets it in. */
static void t_signal_allow_uid(void **state)
{
    (void)state;
    static const struct {
        const char *query;
        int root_in;
    } cases[] = {{"?allow_uid=1", 0}, {"?allow_uid=65533", 0}, {"?allow_uid=any", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sigrx r = {cases[i].query, {-1, -1}, cases[i].root_in};
        assert_int_equal(pipe(r.ready), 0);
        pid_t p = ipkt_spawn(sig_receiver, &r);
        close(r.ready[1]);
        char b;
        assert_int_equal(read(r.ready[0], &b, 1), 1);
        close(r.ready[0]);
        char url[64];
        snprintf(url, sizeof url, "signal:%d", (int)p);
        ipk_chan *c = NULL;
        ipkt_ok(ipk_dial(&c, url, NULL));
        ipkt_ok(ipk_send(c, "root", 4, -1));
        ipkt_ok(ipk_close(c));
        if (!cases[i].root_in)
            assert_int_equal(ipkt_wait(ipkt_spawn(sig_send_nobody, &p)), 0);
        if (ipkt_wait(p) != 0)
            fail_msg("signal receiver with %s: see above", cases[i].query);
    }
}

/* ---- the server's allow-lists on a unixpacket listener ---- */

typedef struct srv_peer {
    const char *url;
    int nobody, served;
} srv_peer;

static int srv_client(void *arg)
{
    const srv_peer *a = arg;
    if (a->nobody)
        IPKT_CHECK(ipkt_become_nobody() == 0);
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, a->url, NULL) == 0);
    char b[8];
    long r = ipk_send(c, "abc", 3, 10000);
    if (r == 0)
        r = ipk_recv(c, b, sizeof b, 10000);
    if (a->served)
        IPKT_CHECK(r == 3 && memcmp(b, "abc", 3) == 0);
    else
        IPKT_CHECK(r == IPK_EOF || r == -ECONNRESET || r == -EPIPE);
    ipk_close(c);
    return 0;
}

/* test_serve.c covers unix; unixpacket has its own accept path in the server. The socket is
 * 0666, so only allow_uid= keeps nobody out: and nobody is served once its uid is listed. */
static void t_serve_allow_unixpacket(void **state)
{
    (void)state;
    const char *lists[] = {"allow_uid=root", "allow_uid=0,65534"};
    for (int i = 0; i < 2; i++) {
        char sock[256], url[400], dial[300], log[256];
        ipkt_path(sock, sizeof sock, "serve.sock");
        ipkt_journal("path", sock);
        ipkt_path(log, sizeof log, "serve.log");
        ipkt_journal("path", log);
        snprintf(url, sizeof url, "unixpacket:%s?perm=0666&%s", sock, lists[i]);
        snprintf(dial, sizeof dial, "unixpacket:%s", sock);
        bg b;
        BG(&b, NULL, "serve", "--log", log, "--workers", "1", url);
        wait_text(log, "started, master pid");
        srv_peer other = {dial, 1, i == 1}, root = {dial, 0, 1};
        assert_int_equal(ipkt_wait(ipkt_spawn(srv_client, &other)), 0);
        assert_int_equal(ipkt_wait(ipkt_spawn(srv_client, &root)), 0);
        if (i == 0)
            wait_text(log, "not allowed: closed");
        assert_int_equal(kill(b.pid, SIGQUIT), 0);
        run r;
        assert_int_equal(bg_finish(&b, &r), 0);
        wait_text(log, i == 0 ? "1 peers refused" : "0 peers refused");
    }
}

/* ---- the server's log file ---- */

/* ipckit serve as root with --log in a directory others may write: a link planted at the path
 * (the server appended its log to what the link pointed to) and a file nobody made there (the
 * server wrote into a file nobody reads) are refused, and such a file as --pid-file too; the
 * server's own log is appended to. */
static void serve_refused(const char *opt, const char *file, const char *url, const char *why)
{
    bg b;
    run r;
    BG(&b, NULL, "serve", opt, file, "--workers", "1", url);
    wait_text(b.errf, why); /* a server that took the log would serve on, and say nothing */
    assert_int_not_equal(bg_finish(&b, &r), 0);
}

static int make_file_nobody(void *arg)
{
    IPKT_CHECK(ipkt_become_nobody() == 0);
    int fd = open(arg, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    IPKT_CHECK(fd >= 0);
    close(fd);
    return 0;
}

static void t_serve_log_planted(void **state)
{
    (void)state;
    char dir[256], log[300], sock[300], url[320];
    pub_dir(dir, sizeof dir, 01777);
    snprintf(sock, sizeof sock, "%s/serve.sock", dir);
    ipkt_journal("path", sock);
    snprintf(url, sizeof url, "unix:%s", sock);
    snprintf(log, sizeof log, "%s/serve.log", dir);
    ipkt_journal("path", log);
    target t;
    target_make(&t, 0);
    assert_int_equal(symlink(t.path, log), 0);
    serve_refused("--log", log, url, "a symbolic link; refused");
    target_unchanged(&t);
    link_still_there(log, t.path);
    unlink(log);
    assert_int_equal(ipkt_wait(ipkt_spawn(make_file_nobody, log)), 0);
    serve_refused("--log", log, url, "not a regular file of this user");
    struct stat st;
    assert_int_equal(lstat(log, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_uid, NOBODY);
    /* The pid file likewise: nobody's was emptied, filled with root's pid and removed at exit. */
    serve_refused("--pid-file", log, url, "not a regular file of this user");
    assert_int_equal(lstat(log, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
    /* Root's own log, existing: appended to. */
    unlink(log);
    int fd = open(log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "earlier\n", 8), 8);
    close(fd);
    bg b;
    run r;
    BG(&b, NULL, "serve", "--log", log, "--workers", "1", url);
    wait_text(log, "started, master pid");
    assert_int_equal(kill(b.pid, SIGQUIT), 0);
    assert_int_equal(bg_finish(&b, &r), 0);
    char buf[4096];
    ipkt_slurp(log, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "earlier\n", 8), 0);
}

IPKT_MAIN(cmocka_unit_test(t_perm_exact), cmocka_unit_test(t_symlink_refused),
          cmocka_unit_test(t_mqueue_no_symlink), cmocka_unit_test(t_planted_other_user),
          cmocka_unit_test(t_close_replaced), cmocka_unit_test(t_planted_own_wider),
          cmocka_unit_test(t_other_user_access), cmocka_unit_test(t_shm_wake_socket),
          cmocka_unit_test(t_rm_other_users), cmocka_unit_test(t_signal_allow_uid),
          cmocka_unit_test(t_serve_allow_unixpacket), cmocka_unit_test(t_serve_log_planted))
