/*
 * objects_foreign.c - the kinds of kernel object that no transport creates but that programs of
 * the same family leave behind: POSIX named semaphores (/dev/shm/sem.NAME; shm:'s segment mode
 * uses one), System V segments and semaphore sets, and System V queues created IPC_PRIVATE
 * (key 0, which no sysv: address can name). They have no scheme, so their addresses are the
 * core's own: "sem:/NAME" and "sysv-msg:ID", "sysv-shm:ID", "sysv-sem:ID".
 */
#include "objects.h"

#include <dirent.h>
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

static int ipk__sem_remove(const ipk__obj *o, unsigned flags)
{
    (void)flags;
    return sem_unlink(o->name) == 0 ? 0 : ipk__errsys(-errno, "%s: sem_unlink", o->url);
}

/* A System V segment is in use while attached, or while its creator or last user lives. */
static void ipk__sysv_shm_settle(ipk__obj *o, const ipk__objset *s)
{
    (void)s;
    o->owner_gone = o->nattch > 0 || o->alive ? 0 : 1;
    o->why = o->nattch > 0 ? "attached"
             : o->alive    ? "its creator or last user is alive"
                           : "not attached, creator and last user gone";
}

/* The id still names the object inspected: same key (ids are reused only after a wrap). */
static int ipk__sysv_same(const ipk__obj *o, long key)
{
    return key == o->key ? 0 : ipk__err(-ESTALE, "%s: id reused since it was inspected", o->url);
}

static int ipk__sysv_shm_remove(const ipk__obj *o, unsigned flags)
{
    (void)flags;
    struct shmid_ds ds;
    if (shmctl((int)o->id, IPC_STAT, &ds) != 0)
        return ipk__errsys(-errno, "%s: shmctl(IPC_STAT)", o->url);
    int r = ipk__sysv_same(o, (long)ds.shm_perm.__key);
    if (r == 0 && shmctl((int)o->id, IPC_RMID, NULL) != 0)
        r = ipk__errsys(-errno, "%s: shmctl(IPC_RMID)", o->url);
    return r;
}

static int ipk__sysv_sem_remove(const ipk__obj *o, unsigned flags)
{
    (void)flags;
    struct semid_ds ds;
    if (semctl((int)o->id, 0, IPC_STAT, &ds) != 0)
        return ipk__errsys(-errno, "%s: semctl(IPC_STAT)", o->url);
    int r = ipk__sysv_same(o, (long)ds.sem_perm.__key);
    if (r == 0 && semctl((int)o->id, 0, IPC_RMID) != 0)
        r = ipk__errsys(-errno, "%s: semctl(IPC_RMID)", o->url);
    return r;
}

int ipk__obj_msq_remove(const ipk__obj *o, unsigned flags)
{
    struct msqid_ds ds;
    if (msgctl((int)o->id, IPC_STAT, &ds) != 0)
        return ipk__errsys(-errno, "%s: msgctl(IPC_STAT)", o->url);
    int r = ipk__sysv_same(o, (long)ds.msg_perm.__key);
    if (r == 0 && ds.msg_qnum > 0 && !(flags & IPK_OBJ_FORCE))
        r = ipk__err(-ENOTEMPTY, "%s: %lu messages wait in it now; not removed", o->url,
                     (unsigned long)ds.msg_qnum);
    if (r == 0 && msgctl((int)o->id, IPC_RMID, NULL) != 0)
        r = ipk__errsys(-errno, "%s: msgctl(IPC_RMID)", o->url);
    return r;
}

static const ipk__objkind ipk__kind_sem = {"posix-sem", 0, NULL, ipk__sem_remove};
static const ipk__objkind ipk__kind_sysv_shm = {"sysv-shm", 0, ipk__sysv_shm_settle,
                                                ipk__sysv_shm_remove};
static const ipk__objkind ipk__kind_sysv_sem = {"sysv-sem", 0, ipk__obj_settle_used,
                                                ipk__sysv_sem_remove};
static const ipk__objkind ipk__kind_sysv_msg = {"sysv-msg", IPK__OK_CARRIES, ipk__obj_settle_used,
                                                ipk__obj_msq_remove};

const ipk__objkind *const ipk__foreign_kinds[] = {&ipk__kind_sem, &ipk__kind_sysv_shm,
                                                  &ipk__kind_sysv_sem, NULL};

/* ---- POSIX named semaphores ---- */

static int ipk__sem_add(ipk__objset *s, const char *name)
{
    char path[NAME_MAX + 16];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/sem.%s", name + 1);
    if (lstat(path, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -ENOENT;
    ipk__obj *o = ipk__obj_add(s, &ipk__kind_sem, name, "sem:%s", name);
    if (o == NULL)
        return -ENOMEM;
    ipk__obj_stat(o, &st);
    o->size = st.st_size;
    return 0;
}

static void ipk__sem_scan(ipk__objset *s)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL)
        return; /* shm: says why */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char name[NAME_MAX + 2];
        if (strncmp(e->d_name, "sem.", 4) == 0 && e->d_name[4] != '\0') {
            snprintf(name, sizeof name, "/%s", e->d_name + 4);
            ipk__sem_add(s, name);
        }
    }
    closedir(d);
}

/* ---- System V ---- */

enum { IPK__SYSV_MSG, IPK__SYSV_SHM, IPK__SYSV_SEM };

typedef struct ipk__sysv_scan {
    ipk__objset *s;
    const ipk__objkind *kind;
    int what;           /* IPK__SYSV_* */
    const char *scheme; /* "sysv-shm"; for queues the scheme of keyed ones, or NULL */
    long only_id;       /* -1: every row (queues: keyed ones with a scheme, else private ones) */
    int found;
} ipk__sysv_scan;

/* One row of /proc/sysvipc/{msg,shm,sem}:
 *   msg: key msqid perms cbytes qnum lspid lrpid uid ...
 *   shm: key shmid perms size cpid lpid nattch uid ...
 *   sem: key semid perms nsems uid ... */
static void ipk__sysv_row(void *arg, const char *line)
{
    ipk__sysv_scan *x = arg;
    long key, id;
    unsigned perms;
    long long c[5];
    int uid_col = x->what == IPK__SYSV_SEM ? 1 : 4;
    if (ipk__obj_sysv_row(line, &key, &id, &perms, c, 5) <= uid_col)
        return;
    int keyed = x->what == IPK__SYSV_MSG && x->scheme != NULL;
    if (x->only_id >= 0 ? id != x->only_id : x->what == IPK__SYSV_MSG && (key != 0) != keyed)
        return;
    char name[32];
    snprintf(name, sizeof name, "0x%08lx", (unsigned long)key & 0xffffffffUL);
    ipk__obj *o = keyed && key != 0
                      ? ipk__obj_add(x->s, x->kind, name, "%s:%s", x->scheme, name)
                      : ipk__obj_add(x->s, x->kind, name, "%s:%ld",
                                     x->what == IPK__SYSV_MSG ? "sysv-msg" : x->scheme, id);
    if (o == NULL)
        return;
    x->found = 1;
    o->id = id;
    o->key = key;
    o->mode = perms & 0777;
    o->uid = (uid_t)c[uid_col];
    if (x->what == IPK__SYSV_MSG) {
        o->bytes = c[0];
        o->msgs = c[1];
        ipk__obj_kpid(o, (pid_t)c[2]);
        ipk__obj_kpid(o, (pid_t)c[3]);
    } else if (x->what == IPK__SYSV_SHM) {
        o->size = c[0];
        o->nattch = (long)c[3];
        ipk__obj_kpid(o, (pid_t)c[1]);
        ipk__obj_kpid(o, (pid_t)c[2]);
    } else {
        /* The kernel remembers the last process that operated on each semaphore. */
        for (long long i = 0; i < c[0] && i < 64; i++)
            ipk__obj_kpid(o, semctl((int)id, (int)i, GETPID));
    }
}

static const char *const ipk__sysv_proc[] = {"/proc/sysvipc/msg", "/proc/sysvipc/shm",
                                             "/proc/sysvipc/sem"};

static int ipk__sysv_scan_rows(ipk__sysv_scan *x)
{
    int r = ipk__obj_lines(ipk__sysv_proc[x->what], ipk__sysv_row, x);
    if (r != 0)
        ipk__obj_note(x->s, "%s: %s: not listed", ipk__sysv_proc[x->what], strerror(-r));
    return r != 0 ? r : x->found ? 0 : -ENOENT;
}

int ipk__obj_msq_scan(ipk__objset *s, const ipk__objkind *k, const char *scheme, long only_id)
{
    ipk__sysv_scan x = {s, k, IPK__SYSV_MSG, scheme, only_id, 0};
    return ipk__sysv_scan_rows(&x);
}

static const struct {
    const ipk__objkind *kind;
    const char *scheme;
} ipk__sysv_files[] = {
    {&ipk__kind_sysv_msg, "sysv-msg"},
    {&ipk__kind_sysv_shm, "sysv-shm"},
    {&ipk__kind_sysv_sem, "sysv-sem"},
};

/* Private queues (or, by id, any queue), segments, semaphore sets: k is IPK__SYSV_*. */
static int ipk__sysv_scan_file(ipk__objset *s, size_t k, long only_id)
{
    ipk__sysv_scan x = {s,       ipk__sysv_files[k].kind,
                        (int)k,  k == IPK__SYSV_MSG ? NULL : ipk__sysv_files[k].scheme,
                        only_id, 0};
    return ipk__sysv_scan_rows(&x);
}

void ipk__foreign_objects(ipk__objset *s)
{
    ipk__sem_scan(s);
    for (size_t k = 0; k < sizeof ipk__sysv_files / sizeof ipk__sysv_files[0]; k++)
        ipk__sysv_scan_file(s, k, -1);
}

int ipk__foreign_resolve(ipk__objset *s, const char *url, int *r)
{
    if (strncmp(url, "sem:", 4) == 0) {
        const char *n = url + 4;
        if (n[0] != '/' || n[1] == '\0' || strchr(n + 1, '/') != NULL || strlen(n) > NAME_MAX)
            *r = ipk__err(IPK_EADDR, "%s: the name must be /NAME", url);
        else if ((*r = ipk__sem_add(s, n)) == -ENOENT)
            ipk__err(-ENOENT, "%s: no such semaphore", url);
        return 1;
    }
    for (size_t k = 0; k < sizeof ipk__sysv_files / sizeof ipk__sysv_files[0]; k++) {
        size_t n = strlen(ipk__sysv_files[k].scheme);
        if (strncmp(url, ipk__sysv_files[k].scheme, n) != 0 || url[n] != ':')
            continue;
        long id;
        if (ipk__parse_long(url + n + 1, 0, 0x7fffffffL, &id) != 0)
            *r = ipk__err(IPK_EADDR, "%s: '%s' is not an id", url, url + n + 1);
        else if ((*r = ipk__sysv_scan_file(s, k, id)) == -ENOENT)
            ipk__err(-ENOENT, "%s: no such object", url);
        return 1;
    }
    return 0;
}
