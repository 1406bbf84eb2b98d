/*
 * objects.c - finds the IPC objects on this machine, who holds them, and whether they are stale;
 * removes them. Shared by `ipckit ls` and `ipckit rm`.
 *
 * Sources: /dev/shm (POSIX segments and named semaphores), /dev/mqueue (POSIX queues),
 * /proc/sysvipc/{msg,shm,sem}, FIFOs and socket files under the given directories, and
 * /proc/net/unix (bound and abstract sockets). Holders come from /proc/PID/fd (descriptors,
 * matched by device and inode, or by socket inode) and /proc/PID/maps (mappings). The rule for
 * "stale" is conservative: an object is stale only when the evidence is complete - when some
 * process could not be inspected, an unheld object is "unknown", and rm --stale leaves it.
 */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

#define MQUEUE_MAGIC_FS 0x19800202
#define DIR_DEPTH       4 /* how deep to look for FIFOs and sockets below each directory */

const char *obj_kind_name(enum obj_kind k)
{
    static const char *const names[] = {
        [OBJ_SHM] = "posix-shm",     [OBJ_SEM] = "posix-sem",     [OBJ_MQ] = "posix-mq",
        [OBJ_SYSV_MSG] = "sysv-msg", [OBJ_SYSV_SHM] = "sysv-shm", [OBJ_SYSV_SEM] = "sysv-sem",
        [OBJ_FIFO] = "fifo",         [OBJ_SOCK] = "unix-socket",  [OBJ_ASOCK] = "unix-abstract",
    };
    return names[k];
}

int obj_kind_mask(const char *list, unsigned *mask)
{
    *mask = 0;
    while (*list) {
        size_t n = strcspn(list, ",");
        unsigned k = 0;
        while (k <= OBJ_ASOCK && (strlen(obj_kind_name((enum obj_kind)k)) != n ||
                                  strncmp(obj_kind_name((enum obj_kind)k), list, n) != 0))
            k++;
        if (k > OBJ_ASOCK)
            return -1;
        *mask |= 1u << k;
        list += n + (list[n] == ',');
    }
    return 0;
}

void obj_where_init(obj_where *w)
{
    memset(w, 0, sizeof *w);
    w->dirs[0] = "/tmp";
    w->dirs[1] = "/run";
    w->kinds = ~0u;
}

int obj_where_opt(obj_where *w, const char *cmd, int opt, const char *arg)
{
    if (opt == 'k' && obj_kind_mask(arg, &w->kinds) != 0)
        return cli_usage_err(cmd,
                             "--kind %s: kinds are posix-shm posix-sem posix-mq sysv-msg "
                             "sysv-shm sysv-sem fifo unix-socket unix-abstract",
                             arg);
    if (opt == 'D') {
        if (w->ndirs == OBJ_MAX_DIRS)
            return cli_usage_err(cmd, "at most %d --dir options", OBJ_MAX_DIRS);
        w->dirs[w->ndirs++] = arg; /* the first -D replaces the defaults */
        w->dirs[w->ndirs] = NULL;
    }
    return 0;
}

void obj_filter(obj_list *l, unsigned mask)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (mask & (1u << l->v[i].kind))
            l->v[k++] = l->v[i];
    l->n = k;
}

static void note(obj_list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(obj_list *l, const char *fmt, ...)
{
    size_t n = strlen(l->notes);
    va_list ap;
    va_start(ap, fmt);
    if (n < sizeof l->notes - 2)
        vsnprintf(l->notes + n, sizeof l->notes - n, fmt, ap);
    va_end(ap);
    n = strlen(l->notes);
    if (n < sizeof l->notes - 1)
        strcat(l->notes, "\n");
}

static obj *obj_new(obj_list *l, enum obj_kind k)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        obj *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    obj *o = &l->v[l->n++];
    memset(o, 0, sizeof *o);
    o->kind = k;
    o->id = -1;
    o->size = -1;
    o->depth = -1;
    o->stale = STALE_UNKNOWN;
    o->why = "";
    return o;
}

static void obj_stat(obj *o, const struct stat *st)
{
    o->uid = st->st_uid;
    o->mode = st->st_mode & 07777;
    o->dev = st->st_dev;
    o->ino = st->st_ino;
}

static int pid_alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void add_pid(obj *o, pid_t pid)
{
    for (int i = 0; i < o->npids; i++)
        if (o->pids[i] == pid)
            return;
    if (o->npids < OBJ_MAX_PIDS)
        o->pids[o->npids++] = pid;
}

/* ---- POSIX shared memory, semaphores and queues ---- */

static int add_posix_shm(obj_list *l, const char *file)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/%s", file);
    if (lstat(path, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    int sem = strncmp(file, "sem.", 4) == 0;
    obj *o = obj_new(l, sem ? OBJ_SEM : OBJ_SHM);
    if (o == NULL)
        return -ENOMEM;
    obj_stat(o, &st);
    snprintf(o->name, sizeof o->name, "/%s", sem ? file + 4 : file);
    snprintf(o->url, sizeof o->url, "%s:%s", sem ? "sem" : "shm", o->name);
    o->size = st.st_size;
    return 0;
}

static void scan_shm(obj_list *l)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL) {
        note(l, "/dev/shm: %s: POSIX shared memory not listed", strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            add_posix_shm(l, e->d_name);
    closedir(d);
}

/* Fills in a queue's depth and inode by opening it (works without /dev/mqueue mounted). */
static int add_mq(obj_list *l, const char *name, const char *qsize_file)
{
    mqd_t q = mq_open(name, O_RDONLY | O_NONBLOCK);
    if (q == (mqd_t)-1 && qsize_file == NULL)
        return -errno;
    obj *o = obj_new(l, OBJ_MQ);
    if (o == NULL) {
        if (q != (mqd_t)-1)
            mq_close(q);
        return -ENOMEM;
    }
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->url, sizeof o->url, "mq:%s", name);
    struct stat st;
    if (q != (mqd_t)-1) {
        struct mq_attr a;
        if (mq_getattr(q, &a) == 0)
            o->depth = a.mq_curmsgs;
        if (fstat(q, &st) == 0)
            obj_stat(o, &st);
        mq_close(q);
    } else if (stat(qsize_file, &st) == 0) {
        obj_stat(o, &st);
    }
    if (qsize_file != NULL) {
        /* "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0": bytes queued. */
        FILE *f = fopen(qsize_file, "re");
        long long qs;
        if (f != NULL && fscanf(f, "QSIZE:%lld", &qs) == 1)
            o->size = qs;
        if (f != NULL)
            fclose(f);
    }
    return 0;
}

static void scan_mq_dir(obj_list *l, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char name[NAME_MAX + 2], file[PATH_MAX];
        snprintf(name, sizeof name, "/%s", e->d_name);
        snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
        add_mq(l, name, file);
    }
    closedir(d);
}

/* POSIX queues are only listable through an mqueue file system. Where /dev/mqueue is not
 * mounted and we may, mount one in a private mount namespace of this process only: nobody else
 * sees it, and it goes away with us. */
static void scan_mq(obj_list *l)
{
    struct statfs fs;
    if (statfs("/dev/mqueue", &fs) == 0 && (unsigned long)fs.f_type == MQUEUE_MAGIC_FS) {
        scan_mq_dir(l, "/dev/mqueue");
        return;
    }
    char dir[] = "/tmp/.ipckit-mq.XXXXXX";
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mkdtemp(dir) == NULL) {
        note(l, "POSIX queues not listed: /dev/mqueue is not mounted "
                "(mount -t mqueue none /dev/mqueue)");
        return;
    }
    if (mount("mqueue", dir, "mqueue", 0, NULL) == 0) {
        scan_mq_dir(l, dir);
        umount2(dir, MNT_DETACH);
    } else {
        note(l, "POSIX queues not listed: cannot mount an mqueue file system: %s", strerror(errno));
    }
    rmdir(dir);
}

/* ---- System V ---- */

/* Reads one /proc/sysvipc file, calling fn for every row (the header skipped). */
static void scan_sysv_file(obj_list *l, const char *file, void (*fn)(obj_list *, const char *))
{
    FILE *f = fopen(file, "re");
    if (f == NULL) {
        note(l, "%s: %s", file, strerror(errno));
        return;
    }
    char line[512];
    if (fgets(line, sizeof line, f) != NULL)
        while (fgets(line, sizeof line, f) != NULL)
            fn(l, line);
    fclose(f);
}

static void sysv_name(obj *o, const char *what, long key, long id)
{
    snprintf(o->name, sizeof o->name, "0x%08lx", (unsigned long)key & 0xffffffffUL);
    o->id = id;
    if (o->kind == OBJ_SYSV_MSG && key != 0)
        snprintf(o->url, sizeof o->url, "sysv:0x%08lx", (unsigned long)key & 0xffffffffUL);
    else
        snprintf(o->url, sizeof o->url, "%s:%ld", what, id);
}

static void sysv_msg_row(obj_list *l, const char *line)
{
    long key, id, cbytes, qnum;
    int lspid, lrpid;
    unsigned perms, uid;
    if (sscanf(line, "%ld %ld %o %ld %ld %d %d %u", &key, &id, &perms, &cbytes, &qnum, &lspid,
               &lrpid, &uid) != 8)
        return;
    obj *o = obj_new(l, OBJ_SYSV_MSG);
    if (o == NULL)
        return;
    sysv_name(o, "sysv-msg", key, id);
    o->mode = perms & 0777;
    o->uid = uid;
    o->size = cbytes;
    o->depth = qnum;
    if (lspid > 0)
        add_pid(o, lspid), o->used = 1;
    if (lrpid > 0)
        add_pid(o, lrpid), o->used = 1;
}

static void sysv_shm_row(obj_list *l, const char *line)
{
    long key, id, nattch;
    unsigned long long size;
    int cpid, lpid;
    unsigned perms, uid;
    if (sscanf(line, "%ld %ld %o %llu %d %d %ld %u", &key, &id, &perms, &size, &cpid, &lpid,
               &nattch, &uid) != 8)
        return;
    obj *o = obj_new(l, OBJ_SYSV_SHM);
    if (o == NULL)
        return;
    sysv_name(o, "sysv-shm", key, id);
    o->mode = perms & 0777;
    o->uid = uid;
    o->size = (long long)size;
    o->nattch = nattch;
    if (cpid > 0)
        add_pid(o, cpid), o->used = 1;
    if (lpid > 0)
        add_pid(o, lpid), o->used = 1;
}

static void sysv_sem_row(obj_list *l, const char *line)
{
    long key, id, nsems;
    unsigned perms, uid;
    if (sscanf(line, "%ld %ld %o %ld %u", &key, &id, &perms, &nsems, &uid) != 5)
        return;
    obj *o = obj_new(l, OBJ_SYSV_SEM);
    if (o == NULL)
        return;
    sysv_name(o, "sysv-sem", key, id);
    o->mode = perms & 0777;
    o->uid = uid;
    o->depth = nsems;
    /* The kernel remembers the last process that operated on each semaphore. */
    for (long i = 0; i < nsems && i < 64; i++) {
        int pid = semctl((int)id, (int)i, GETPID);
        if (pid > 0)
            add_pid(o, pid), o->used = 1;
    }
}

/* ---- FIFOs and Unix sockets ---- */

typedef struct usock {
    unsigned long ino;
    int listening;
    char path[110]; /* '@' first for abstract names */
} usock;

static usock *unix_table(size_t *n)
{
    *n = 0;
    FILE *f = fopen("/proc/net/unix", "re");
    if (f == NULL)
        return NULL;
    usock *v = NULL;
    size_t cap = 0;
    char line[512];
    if (fgets(line, sizeof line, f) == NULL)
        goto out;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long flags, ino;
        unsigned type, st;
        char path[256] = "";
        /* Num RefCount Protocol Flags Type St Inode Path */
        if (sscanf(line, "%*s %*s %*s %lx %x %x %lu %255s", &flags, &type, &st, &ino, path) < 4)
            continue;
        /* Only sockets bound to a name and not connected: listeners and datagram sockets
         * (accepted connections repeat the listener's path). */
        if (path[0] == '\0' || st != 1)
            continue;
        if (*n == cap) {
            usock *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
            if (nv == NULL)
                break;
            v = nv;
        }
        usock *u = &v[(*n)++];
        u->ino = ino;
        u->listening = (flags & 0x10000) != 0;
        snprintf(u->path, sizeof u->path, "%s", path);
    }
out:
    fclose(f);
    return v;
}

static int add_path_obj(obj_list *l, const char *path, const struct stat *st)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].dev == st->st_dev && l->v[i].ino == st->st_ino &&
            (l->v[i].kind == OBJ_FIFO || l->v[i].kind == OBJ_SOCK))
            return 0;
    int fifo = S_ISFIFO(st->st_mode);
    obj *o = obj_new(l, fifo ? OBJ_FIFO : OBJ_SOCK);
    if (o == NULL)
        return -ENOMEM;
    obj_stat(o, st);
    snprintf(o->name, sizeof o->name, "%s", path);
    snprintf(o->url, sizeof o->url, "%s:%s", fifo ? "fifo" : "unix", path);
    if (fifo)
        o->size = 0;
    return 0;
}

static void scan_dir(obj_list *l, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name) >=
                sizeof path ||
            lstat(path, &st) != 0)
            continue;
        if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
            add_path_obj(l, path, &st);
        else if (S_ISDIR(st.st_mode) && depth > 1)
            scan_dir(l, path, depth - 1);
    }
    closedir(d);
}

/* Whether anyone answers on the socket file: -ECONNREFUSED means nobody has it bound. Only used
 * for files that /proc/net/unix does not show (a process in another network namespace may hold
 * them), so a live socket is never taken for stale. */
static int sock_probe(const char *path)
{
    static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    int r = -EPROTOTYPE;
    for (size_t i = 0; i < 3 && r == -EPROTOTYPE; i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return -errno;
        r = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : -errno;
        close(fd);
    }
    return r == -EAGAIN || r == -EINPROGRESS ? 0 : r;
}

/* Whether a bound socket path (as the binder wrote it, possibly relative to its own working
 * directory) may be the file at name. A relative one is matched by its last component: taking
 * a live socket for stale is the mistake to avoid. */
static int same_socket(const char *name, const char *bound)
{
    if (bound[0] == '/' || bound[0] == '@')
        return strcmp(name, bound) == 0;
    const char *base = strrchr(bound, '/') ? strrchr(bound, '/') + 1 : bound;
    const char *nbase = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    return strcmp(base, nbase) == 0;
}

static void match_unix(obj_list *l, const usock *u, size_t nu, int add_bound)
{
    for (size_t k = 0; k < nu; k++) {
        int found = 0;
        for (size_t i = 0; i < l->n; i++) {
            obj *o = &l->v[i];
            if ((o->kind == OBJ_SOCK || o->kind == OBJ_ASOCK) && same_socket(o->name, u[k].path)) {
                o->sock_ino = u[k].ino;
                found = 1;
            }
        }
        if (found || !add_bound)
            continue;
        struct stat st;
        if (u[k].path[0] == '@') {
            obj *o = obj_new(l, OBJ_ASOCK);
            if (o == NULL)
                return;
            snprintf(o->name, sizeof o->name, "%s", u[k].path);
            snprintf(o->url, sizeof o->url, "unix:%s", u[k].path);
            o->sock_ino = u[k].ino;
        } else if (u[k].path[0] == '/' && lstat(u[k].path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            if (add_path_obj(l, u[k].path, &st) == 0)
                l->v[l->n - 1].sock_ino = u[k].ino;
        }
    }
}

/* ---- holders ---- */

static void match_fd(obj_list *l, pid_t pid, int dfd, const char *ent)
{
    char link[128];
    ssize_t n = readlinkat(dfd, ent, link, sizeof link - 1);
    if (n <= 0)
        return;
    link[n] = '\0';
    unsigned long sino = 0;
    if (sscanf(link, "socket:[%lu]", &sino) == 1) {
        for (size_t i = 0; i < l->n; i++)
            if (l->v[i].sock_ino == sino)
                add_pid(&l->v[i], pid);
        return;
    }
    struct stat st;
    if (fstatat(dfd, ent, &st, 0) != 0)
        return;
    for (size_t i = 0; i < l->n; i++) {
        obj *o = &l->v[i];
        if (o->ino == st.st_ino && o->dev == st.st_dev && o->kind != OBJ_SYSV_MSG &&
            o->kind != OBJ_SYSV_SHM && o->kind != OBJ_SYSV_SEM)
            add_pid(o, pid);
    }
}

static void match_maps(obj_list *l, pid_t pid)
{
    char p[64], line[4400];
    snprintf(p, sizeof p, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        char *path = strchr(line, '/');
        if (path == NULL)
            continue;
        path[strcspn(path, "\n")] = '\0';
        char *del = strstr(path, " (deleted)");
        if (del)
            *del = '\0';
        unsigned long shmid;
        int sysv = strncmp(path, "/SYSV", 5) == 0;
        if (!sysv && strncmp(path, "/dev/shm/", 9) != 0)
            continue;
        if (sysv && sscanf(line, "%*s %*s %*s %*s %lu", &shmid) != 1)
            continue;
        for (size_t i = 0; i < l->n; i++) {
            obj *o = &l->v[i];
            if ((sysv && o->kind == OBJ_SYSV_SHM && (unsigned long)o->id == shmid) ||
                (!sysv && o->kind == OBJ_SHM && strcmp(path + 8, o->name) == 0) ||
                (!sysv && o->kind == OBJ_SEM && strncmp(path + 9, "sem.", 4) == 0 &&
                 strcmp(path + 12, o->name) == 0))
                add_pid(o, pid);
        }
    }
    fclose(f);
}

static void scan_holders(obj_list *l)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL) {
        l->partial = 1;
        return;
    }
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid == self)
            continue;
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
        int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            if (errno != ENOENT) /* a process we may not inspect may hold anything */
                l->partial = 1;
            continue;
        }
        DIR *fds = fdopendir(dfd);
        if (fds == NULL) {
            close(dfd);
            continue;
        }
        struct dirent *f;
        while ((f = readdir(fds)) != NULL)
            if (f->d_name[0] != '.')
                match_fd(l, pid, dirfd(fds), f->d_name);
        closedir(fds);
        match_maps(l, pid);
    }
    closedir(proc);
}

/* ---- staleness ---- */

static void settle_one(obj_list *l, obj *o)
{
    for (int i = 0; i < o->npids; i++)
        o->nholders += pid_alive(o->pids[i]);
    switch (o->kind) {
    case OBJ_ASOCK:
        o->stale = STALE_NO;
        o->why = "abstract sockets vanish with their owner";
        return;
    case OBJ_SYSV_MSG:
    case OBJ_SYSV_SEM:
        o->stale = o->nholders ? STALE_NO : o->used ? STALE_YES : STALE_UNKNOWN;
        o->why = o->nholders ? "a process that used it is alive"
                 : o->used   ? "every process that used it is gone"
                             : "never used: no process to check";
        return;
    case OBJ_SYSV_SHM:
        if (o->nattch > 0 || o->nholders) {
            o->stale = STALE_NO;
            o->why = o->nattch > 0 ? "attached" : "its creator or last user is alive";
        } else {
            o->stale = STALE_YES;
            o->why = "not attached, creator and last user gone";
        }
        return;
    case OBJ_SOCK:
        if (o->sock_ino != 0) {
            o->stale = STALE_NO;
            o->why = "a socket is bound to it";
            return;
        }
        switch (sock_probe(o->name)) {
        case -ECONNREFUSED:
            o->stale = STALE_YES;
            o->why = "nobody is bound to it (connect refused)";
            break;
        case 0: /* someone answers: bound in another network namespace, say */
            o->stale = STALE_NO;
            o->why = "a process answers on it";
            break;
        default:
            o->stale = STALE_UNKNOWN;
            o->why = "not bound here, but connect was not refused";
        }
        return;
    default:
        break;
    }
    if (o->nholders) {
        o->stale = STALE_NO;
        o->why =
            o->kind == OBJ_FIFO ? "open in a live process" : "open or mapped in a live process";
    } else if (l->partial) {
        o->stale = STALE_UNKNOWN;
        o->why = "no holder seen, but some processes could not be inspected";
    } else {
        o->stale = STALE_YES;
        o->why = "no process has it open or mapped";
    }
}

void obj_settle(obj_list *l)
{
    size_t nu;
    usock *u = unix_table(&nu);
    match_unix(l, u, nu, 0);
    free(u);
    scan_holders(l);
    for (size_t i = 0; i < l->n; i++)
        settle_one(l, &l->v[i]);
}

int obj_scan(obj_list *l, const char *const *dirs)
{
    scan_shm(l);
    scan_mq(l);
    scan_sysv_file(l, "/proc/sysvipc/msg", sysv_msg_row);
    scan_sysv_file(l, "/proc/sysvipc/shm", sysv_shm_row);
    scan_sysv_file(l, "/proc/sysvipc/sem", sysv_sem_row);
    for (const char *const *d = dirs; d && *d; d++)
        scan_dir(l, *d, DIR_DEPTH);
    size_t nu;
    usock *u = unix_table(&nu);
    match_unix(l, u, nu, 1);
    free(u);
    obj_settle(l);
    return 0;
}

void obj_list_free(obj_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- addresses named on the command line ---- */

static int add_sysv_key(obj_list *l, key_t key)
{
    int id = msgget(key, 0);
    if (id < 0)
        return -errno;
    char line[128];
    struct msqid_ds ds;
    if (msgctl(id, IPC_STAT, &ds) != 0)
        return -errno;
    snprintf(line, sizeof line, "%ld %d %o %lu %lu %d %d %u", (long)key, id,
             (unsigned)ds.msg_perm.mode, (unsigned long)ds.__msg_cbytes, (unsigned long)ds.msg_qnum,
             (int)ds.msg_lspid, (int)ds.msg_lrpid, (unsigned)ds.msg_perm.uid);
    size_t before = l->n;
    sysv_msg_row(l, line);
    return l->n > before ? 0 : -ENOMEM;
}

/* sysv-msg:ID, sysv-shm:ID, sysv-sem:ID: looked up in /proc/sysvipc so the row is complete. */
static int add_sysv_id(obj_list *l, enum obj_kind k, const char *body)
{
    long id;
    if (cli_parse_long(body, 0, 0x7fffffffL, &id) != 0) {
        note(l, "'%s' is not an id", body);
        return -EINVAL;
    }
    obj_list all = {0};
    scan_sysv_file(&all,
                   k == OBJ_SYSV_MSG   ? "/proc/sysvipc/msg"
                   : k == OBJ_SYSV_SHM ? "/proc/sysvipc/shm"
                                       : "/proc/sysvipc/sem",
                   k == OBJ_SYSV_MSG   ? sysv_msg_row
                   : k == OBJ_SYSV_SHM ? sysv_shm_row
                                       : sysv_sem_row);
    int r = -ENOENT;
    for (size_t i = 0; i < all.n; i++)
        if (all.v[i].id == id) {
            obj *o = obj_new(l, k);
            if (o == NULL) {
                r = -ENOMEM;
                break;
            }
            *o = all.v[i];
            r = 0;
        }
    obj_list_free(&all);
    return r;
}

static int add_sysv_url(obj_list *l, const char *body, const char *query)
{
    if (isdigit((unsigned char)body[0])) {
        long k;
        char *end;
        errno = 0;
        k = strtol(body, &end, 0);
        if (errno || *end || k == 0) {
            note(l, "sysv:%s: not a key", body);
            return -EINVAL;
        }
        return add_sysv_key(l, (key_t)k);
    }
    long proj = 1;
    const char *p = query ? strstr(query, "proj=") : NULL;
    if (p != NULL) {
        char v[16];
        snprintf(v, sizeof v, "%.*s", (int)strcspn(p + 5, "&"), p + 5);
        if (cli_parse_long(v, 1, 255, &proj) != 0) {
            note(l, "sysv:%s: proj must be 1..255", body);
            return -EINVAL;
        }
    }
    key_t key = ftok(body, (int)proj);
    if (key == (key_t)-1)
        return -errno;
    return add_sysv_key(l, key);
}

int obj_add_url(obj_list *l, const char *url)
{
    char buf[4200];
    if (snprintf(buf, sizeof buf, "%s", url) >= (int)sizeof buf) {
        note(l, "%s: address too long", url);
        return -EINVAL;
    }
    char *colon = strchr(buf, ':');
    if (colon == NULL) {
        note(l, "%s: missing scheme (mq:/NAME, shm:/NAME, fifo:PATH, unix:PATH, sysv:KEY, ...)",
             url);
        return -EINVAL;
    }
    *colon = '\0';
    const char *scheme = buf;
    char *body = colon + 1;
    char *query = strchr(body, '?');
    if (query)
        *query++ = '\0';
    struct stat st;
    if (strcmp(scheme, "mq") == 0 || strcmp(scheme, "shm") == 0 || strcmp(scheme, "sem") == 0) {
        if (body[0] != '/' || body[1] == '\0' || strchr(body + 1, '/')) {
            note(l, "%s: the name must be /NAME", url);
            return -EINVAL;
        }
        if (scheme[0] == 'm')
            return add_mq(l, body, NULL);
        char file[NAME_MAX + 8];
        snprintf(file, sizeof file, "%s%s", scheme[1] == 'e' ? "sem." : "", body + 1);
        return add_posix_shm(l, file);
    }
    if (strcmp(scheme, "sysv") == 0)
        return add_sysv_url(l, body, query);
    if (strcmp(scheme, "sysv-msg") == 0)
        return add_sysv_id(l, OBJ_SYSV_MSG, body);
    if (strcmp(scheme, "sysv-shm") == 0)
        return add_sysv_id(l, OBJ_SYSV_SHM, body);
    if (strcmp(scheme, "sysv-sem") == 0)
        return add_sysv_id(l, OBJ_SYSV_SEM, body);
    int fifo = strcmp(scheme, "fifo") == 0;
    if (fifo || strncmp(scheme, "unix", 4) == 0) {
        if (body[0] == '@') {
            note(l, "%s: an abstract socket has no file; it vanishes when its owner closes it",
                 url);
            return -EINVAL;
        }
        if (body[0] == '\0') {
            note(l, "%s: missing path", url);
            return -EINVAL;
        }
        if (lstat(body, &st) != 0)
            return -errno;
        if (fifo ? !S_ISFIFO(st.st_mode) : !S_ISSOCK(st.st_mode)) {
            note(l, "%s: %s is not a %s", url, body, fifo ? "FIFO" : "socket");
            return -EINVAL;
        }
        /* Absolute, as /proc/net/unix and /proc/PID/fd name them. */
        char abs[PATH_MAX];
        if (body[0] != '/' && getcwd(abs, sizeof abs - strlen(body) - 2) != NULL) {
            strcat(abs, "/");
            strcat(abs, body);
            body = abs;
        }
        return add_path_obj(l, body, &st);
    }
    note(l,
         "%s: '%s:' names nothing rm can remove (mq shm sem fifo unix unixgram unixpacket "
         "sysv sysv-msg sysv-shm sysv-sem)",
         url, scheme);
    return -EINVAL;
}

int obj_remove(const obj *o)
{
    int r;
    struct stat st;
    switch (o->kind) {
    case OBJ_SHM:
        r = shm_unlink(o->name);
        break;
    case OBJ_SEM:
        r = sem_unlink(o->name);
        break;
    case OBJ_MQ:
        r = mq_unlink(o->name);
        break;
    case OBJ_SYSV_MSG:
        r = msgctl((int)o->id, IPC_RMID, NULL);
        break;
    case OBJ_SYSV_SHM:
        r = shmctl((int)o->id, IPC_RMID, NULL);
        break;
    case OBJ_SYSV_SEM:
        r = semctl((int)o->id, 0, IPC_RMID);
        break;
    case OBJ_FIFO:
    case OBJ_SOCK:
        /* The path must still be the object that was inspected, not something put there since. */
        if (lstat(o->name, &st) != 0)
            return -errno;
        if (st.st_dev != o->dev || st.st_ino != o->ino)
            return -ESTALE;
        r = unlink(o->name);
        break;
    default:
        return -EINVAL;
    }
    return r == 0 ? 0 : -errno;
}
