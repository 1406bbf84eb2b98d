/*
 * objects.h - the kernel objects behind ipk_objects_scan() and ipk_objects_resolve(), for the
 * core (objects*.c) and for the transports that create such objects.
 *
 * A transport describes each kind of object it creates (ipk__objkind: how to decide its state,
 * how to remove it) and lists them in its table (kinds, objects, resolve: see transport.h). Its
 * objects() adds what exists; its resolve() adds what an address names. Everything a transport
 * cannot know alone is done once, here in the core, after the transports have added theirs:
 * the holders (/proc/PID/fd, fdinfo and maps), the liveness of recorded pids, and the state.
 */
#ifndef IPK_OBJECTS_H
#define IPK_OBJECTS_H

#include "ipk.h"

#include <sys/stat.h>

#define IPK__OBJ_PIDS 16 /* holders remembered per object */

/* Kind flags. */
#define IPK__OK_CARRIES 0x1u /* its objects hold messages (ipk__obj.carries starts set) */

typedef struct ipk_object ipk__obj;
typedef struct ipk_objects ipk__objset;

typedef struct ipk__objkind {
    const char *name; /* "posix-mq": what ls shows and --kind takes */
    unsigned flags;   /* IPK__OK_* */
    /* Optional: after the holders are known (o->alive, o->readers, the set's partial flag),
     * sets o->owner_gone (1, 0, -1) and o->why, and may refine the depth. NULL: the generic
     * rule - a live holder means in use; none seen means gone, or unknown when some process
     * could not be inspected. */
    void (*settle)(ipk__obj *o, const ipk__objset *set);
    /* Removes o (already checked: still allowed by its state and flags). Should verify first
     * that the name still denotes the object inspected, and, unless flags has IPK_OBJ_FORCE,
     * that nothing waits in it (-ENOTEMPTY). 0 or a negative code with the message set. */
    int (*remove)(const ipk__obj *o, unsigned flags);
} ipk__objkind;

struct ipk_object {
    const ipk__objkind *kind;
    const struct ipk__transport *tr; /* the transport that creates it; NULL: a foreign kind */
    char *name, *url;
    long id;  /* System V id, else -1 */
    long key; /* System V key */
    uid_t uid;
    unsigned mode;
    long long size;  /* bytes it occupies, -1 n/a */
    long long msgs;  /* messages waiting, -1 unknown / n/a */
    long long bytes; /* bytes waiting, -1 unknown / n/a */
    pid_t pids[IPK__OBJ_PIDS];
    int npids;
    int kpids;   /* some of pids were recorded by the kernel (lspid, cpid, ...), not seen holding */
    int alive;   /* how many of pids are alive */
    int readers; /* descriptors open for reading among the holders (a FIFO's data has a reader) */
    int carries; /* holds messages: with the owner gone, an unknown depth means unknown state */
    int has_ino; /* dev/ino identify it: holders are matched by them in fd and maps */
    dev_t dev;
    ino_t ino;
    unsigned long sock_ino; /* a bound socket's inode (/proc/net/unix), 0 if none */
    long nattch;            /* System V segment: attached processes */
    int sock_type;          /* unix sockets: SOCK_* from /proc/net/unix, 0 unknown */
    /* Settled state. */
    int settled;
    int owner_gone; /* 1, 0, -1 */
    int state;      /* IPK_OBJ_* */
    const char *why;
};

/* What objects() may use while adding: the FIFOs and socket files found under the directories of
 * the scan (found once, by the core). */
typedef struct ipk__objfile {
    char *path;
    struct stat st;
} ipk__objfile;

struct ipk_objects {
    ipk__obj **v;
    size_t n, cap;
    size_t settled_upto; /* objects [0, settled_upto) have their state */
    int partial;
    char **notes;
    size_t nnotes;
    ipk__objfile *files; /* during a scan only */
    size_t nfiles;
    const struct ipk__transport *cur; /* the transport adding now (NULL: the core) */
};

/* Adds an object of kind k named name, with url formatted from fmt; every other field unknown
 * (-1, 0). NULL when out of memory. */
ipk__obj *ipk__obj_add(ipk__objset *s, const ipk__objkind *k, const char *name, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* The object of kind k named name already in the set, or NULL. */
ipk__obj *ipk__obj_find(const ipk__objset *s, const ipk__objkind *k, const char *name);
/* Owner, mode and identity from a stat. */
void ipk__obj_stat(ipk__obj *o, const struct stat *st);
/* Records a pid the kernel remembers as a user of o (not seen holding it). */
void ipk__obj_kpid(ipk__obj *o, pid_t pid);
/* Records a live descriptor or mapping of o in pid (reader: open for reading). */
void ipk__obj_holder(ipk__obj *o, pid_t pid, int reader);
/* The generic settle rule (a live holder means in use), for kinds that refine it. */
void ipk__obj_settle_holders(ipk__obj *o, const ipk__objset *s);
/* A settle rule for objects whose only evidence is the pids the kernel recorded (System V):
 * one alive means in use; all gone means gone; none recorded means unknown. */
void ipk__obj_settle_used(ipk__obj *o, const ipk__objset *s);
/* Parses a /proc/sysvipc row: key, id, perms, then up to n more numbers into col. The number
 * of columns read after perms, or -1. */
int ipk__obj_sysv_row(const char *line, long *key, long *id, unsigned *perms, long long *col,
                      int n);
/* Adds the System V message queues of /proc/sysvipc/msg as objects of kind k: with scheme, the
 * keyed ones, named "SCHEME:0xKEY"; without, the private ones (key 0), named "sysv-msg:ID".
 * only_id >= 0: only the queue of that id, whatever its key. 0, -ENOENT when none was added,
 * or -errno when the file cannot be read (noted). */
int ipk__obj_msq_scan(ipk__objset *s, const ipk__objkind *k, const char *scheme, long only_id);
/* Removes System V message queue o->id after checking that the id still has key o->key (it was
 * not reused for another queue) and, unless flags has IPK_OBJ_FORCE, that the queue is empty. */
int ipk__obj_msq_remove(const ipk__obj *o, unsigned flags);
/* A remark for ipk_objects_note(). */
void ipk__obj_note(ipk__objset *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Calls row(arg, line) for every line of a table file after its header line (/proc/sysvipc/msg,
 * /proc/net/unix). 0, or -errno when it cannot be opened. */
int ipk__obj_lines(const char *path, void (*row)(void *arg, const char *line), void *arg);

/* For a path object (FIFO, socket file): adds the file at path (made absolute) if it is of kind
 * k, whose file type is S_IFIFO or S_IFSOCK. 0, -ENOENT, or IPK_EADDR when it is something else. */
int ipk__obj_path(ipk__objset *s, const ipk__objkind *k, mode_t type, const char *scheme,
                  const char *path);
/* A kind's remove for path objects: unlinks the file if the path still names the inode
 * inspected (-ESTALE otherwise). */
int ipk__obj_unlink(const ipk__obj *o, unsigned flags);

/* Whether pid is alive (a zombie is not). */
int ipk__obj_pid_alive(pid_t pid);

/* The core's own scans (objects_proc.c): the files under dirs, and the holders of every object
 * from index `from` on. */
int ipk__obj_walk(ipk__objset *s, const char *const *dirs);
void ipk__obj_holders(ipk__objset *s, size_t from);
/* The kinds no transport creates (objects_foreign.c): what exists, what a pseudo-address names
 * (1 when url is one of theirs, with *r the result), and the kinds themselves. */
void ipk__foreign_objects(ipk__objset *s);
int ipk__foreign_resolve(ipk__objset *s, const char *url, int *r);
extern const ipk__objkind *const ipk__foreign_kinds[];

#endif
