/*
 * objects_proc.c - what the core finds for every kind of object: the FIFOs and socket files
 * under the directories of a scan, and the processes that hold objects, from /proc/PID/fd (a
 * descriptor, matched by device and inode, or a socket by its inode), /proc/PID/fdinfo (whether
 * it is open for reading) and /proc/PID/maps (a mapping, matched by device and inode; System V
 * segments by their id).
 */
#include "objects.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define IPK__OBJ_DEPTH 4 /* how deep to look for FIFOs and sockets below each directory */

int ipk__obj_lines(const char *path, void (*row)(void *arg, const char *line), void *arg)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -errno;
    char line[1024];
    if (fgets(line, sizeof line, f) != NULL)
        while (fgets(line, sizeof line, f) != NULL)
            row(arg, line);
    fclose(f);
    return 0;
}

int ipk__obj_sysv_row(const char *line, long *key, long *id, unsigned *perms, long long *col, int n)
{
    int used;
    if (sscanf(line, "%ld %ld %o%n", key, id, perms, &used) != 3)
        return -1;
    int k = 0;
    for (const char *p = line + used; k < n; k++) {
        char *end;
        errno = 0;
        col[k] = strtoll(p, &end, 10);
        if (end == p || errno != 0)
            break;
        p = end;
    }
    return k;
}

static int ipk__obj_file_known(const ipk__objset *s, const struct stat *st)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i].st.st_dev == st->st_dev && s->files[i].st.st_ino == st->st_ino)
            return 1;
    return 0;
}

static int ipk__obj_walk_dir(ipk__objset *s, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name) >=
                sizeof path ||
            lstat(path, &st) != 0) /* lstat: a link is not followed out of the directory */
            continue;
        if (S_ISDIR(st.st_mode) && depth > 1) {
            r = ipk__obj_walk_dir(s, path, depth - 1);
            continue;
        }
        if (!(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) || ipk__obj_file_known(s, &st))
            continue;
        ipk__objfile *v = realloc(s->files, (s->nfiles + 1) * sizeof *v);
        if (v != NULL)
            s->files = v;
        if (v == NULL || (v[s->nfiles].path = strdup(path)) == NULL) {
            r = -ENOMEM;
            break;
        }
        v[s->nfiles++].st = st;
    }
    closedir(d);
    return r;
}

int ipk__obj_walk(ipk__objset *s, const char *const *dirs)
{
    int r = 0;
    for (const char *const *d = dirs; r == 0 && *d; d++)
        r = ipk__obj_walk_dir(s, *d, IPK__OBJ_DEPTH);
    return r;
}

int ipk__obj_path(ipk__objset *s, const ipk__objkind *k, mode_t type, const char *scheme,
                  const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return ipk__errsys(-errno, "%s:%s", scheme, path);
    if ((st.st_mode & S_IFMT) != type)
        return ipk__err(IPK_EADDR, "%s:%s: %s is not a %s", scheme, path, path,
                        type == S_IFIFO ? "FIFO" : "socket");
    /* Absolute, as /proc/net/unix and /proc/PID/fd name it. */
    char abs[PATH_MAX];
    if (path[0] != '/') {
        if (getcwd(abs, sizeof abs) == NULL || strlen(abs) + 1 + strlen(path) >= sizeof abs)
            return ipk__errsys(-ENAMETOOLONG, "%s:%s", scheme, path);
        strcat(abs, strcmp(abs, "/") ? "/" : "");
        strcat(abs, path);
        path = abs;
    }
    ipk__obj *o = ipk__obj_add(s, k, path, "%s:%s", scheme, path);
    if (o == NULL)
        return -ENOMEM;
    ipk__obj_stat(o, &st);
    return 0;
}

int ipk__obj_unlink(const ipk__obj *o, unsigned flags)
{
    (void)flags; /* a FIFO or socket file holds nothing once unheld */
    struct stat st;
    if (lstat(o->name, &st) != 0)
        return ipk__errsys(-errno, "%s", o->url);
    if (st.st_dev != o->dev || st.st_ino != o->ino)
        return ipk__err(-ESTALE, "%s: replaced since it was inspected; left alone", o->url);
    if (unlink(o->name) != 0)
        return ipk__errsys(-errno, "%s: unlink", o->url);
    return 0;
}

/* ---- holders ---- */

/* Whether descriptor ent of the process (fdinfo directory fi) is open for reading. */
static int ipk__obj_fd_reads(int fi, const char *ent)
{
    int fd = fi >= 0 ? openat(fi, ent, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return 0;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *f = strstr(buf, "flags:");
    return f != NULL && (strtoul(f + 6, NULL, 8) & O_ACCMODE) != O_WRONLY;
}

static void ipk__obj_match_fd(ipk__objset *s, size_t from, pid_t pid, int dfd, int fi,
                              const char *ent)
{
    char link[128];
    ssize_t n = readlinkat(dfd, ent, link, sizeof link - 1);
    if (n <= 0)
        return;
    link[n] = '\0';
    unsigned long sino = 0;
    if (sscanf(link, "socket:[%lu]", &sino) == 1) {
        for (size_t i = from; i < s->n; i++)
            if (s->v[i]->sock_ino == sino)
                ipk__obj_holder(s->v[i], pid, 0);
        return;
    }
    struct stat st;
    if (fstatat(dfd, ent, &st, 0) != 0)
        return;
    int reads = -1;
    for (size_t i = from; i < s->n; i++) {
        ipk__obj *o = s->v[i];
        if (o->has_ino && o->ino == st.st_ino && o->dev == st.st_dev) {
            if (reads < 0)
                reads = ipk__obj_fd_reads(fi, ent);
            ipk__obj_holder(o, pid, reads);
        }
    }
}

/* A System V segment is mapped as "/SYSV<key>" with its id in the inode column. */
static int ipk__obj_sysv_shm(const ipk__obj *o)
{
    return strcmp(o->kind->name, "sysv-shm") == 0;
}

static void ipk__obj_match_maps(ipk__objset *s, size_t from, pid_t pid)
{
    char p[64], line[4400];
    snprintf(p, sizeof p, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return;
    unsigned long long ino, last = 0;
    unsigned maj, min;
    dev_t lastdev = 0;
    int at = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "%*s %*s %*s %x:%x %llu %n", &maj, &min, &ino, &at) != 3 || ino == 0)
            continue;
        if (ino == last && makedev(maj, min) == lastdev)
            continue; /* the next mapping of the same file */
        last = ino;
        lastdev = makedev(maj, min);
        int sysv = strncmp(line + at, "/SYSV", 5) == 0;
        for (size_t i = from; i < s->n; i++) {
            ipk__obj *o = s->v[i];
            if (sysv ? ipk__obj_sysv_shm(o) && (unsigned long long)o->id == ino
                     : o->has_ino && o->ino == ino && major(o->dev) == maj && minor(o->dev) == min)
                ipk__obj_holder(o, pid, 0);
        }
    }
    fclose(f);
}

void ipk__obj_holders(ipk__objset *s, size_t from)
{
    if (from >= s->n)
        return;
    DIR *proc = opendir("/proc");
    if (proc == NULL) {
        s->partial = 1;
        return;
    }
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
        int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            if (errno != ENOENT) /* a process we may not inspect may hold anything */
                s->partial = 1;
            continue;
        }
        snprintf(p, sizeof p, "/proc/%d/fdinfo", (int)pid);
        int fi = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *fds = fdopendir(dfd);
        if (fds == NULL) {
            close(dfd);
            if (fi >= 0)
                close(fi);
            continue;
        }
        struct dirent *f;
        while ((f = readdir(fds)) != NULL)
            if (f->d_name[0] != '.')
                ipk__obj_match_fd(s, from, pid, dirfd(fds), fi, f->d_name);
        closedir(fds);
        if (fi >= 0)
            close(fi);
        ipk__obj_match_maps(s, from, pid);
    }
    closedir(proc);
}
