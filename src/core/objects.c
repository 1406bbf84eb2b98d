/*
 * objects.c - the public enumeration API (ipk_objects_*, ipk_object_*): lists that own their
 * objects, the scan that asks every transport of the registry for the objects it creates, the
 * resolution of an address through its transport's own parser, and the state of each object
 * once its holders are known.
 *
 * The state rule is written once, here: an object is in use while a live process holds it (or
 * its kind's own evidence says its owner lives); with the owner gone it is stale only when
 * nothing waits in it - a queue still holding messages is "undelivered" and only a forced
 * removal takes it (DESIGN 6: no implicit cleanup destroys a message a send reported as sent).
 * Where the evidence is incomplete the state is unknown, and nothing is removed on a guess.
 */
#include "objects.h"
#include "transport.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ipk_objects_new(ipk_objects **out)
{
    if (out == NULL)
        return ipk__err(-EINVAL, "ipk_objects_new: NULL argument");
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

static void ipk__obj_free(ipk__obj *o)
{
    if (o == NULL)
        return;
    free(o->name);
    free(o->url);
    free(o);
}

void ipk_objects_free(ipk_objects *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        ipk__obj_free(l->v[i]);
    for (size_t i = 0; i < l->nnotes; i++)
        free(l->notes[i]);
    free(l->notes);
    free(l->v);
    free(l);
}

ipk__obj *ipk__obj_find(const ipk__objset *s, const ipk__objkind *k, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i]->kind == k && strcmp(s->v[i]->name, name) == 0)
            return s->v[i];
    return NULL;
}

ipk__obj *ipk__obj_add(ipk__objset *s, const ipk__objkind *k, const char *name, const char *fmt,
                       ...)
{
    ipk__obj *o = ipk__obj_find(s, k, name);
    if (o != NULL)
        return o;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        ipk__obj **v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        s->v = v;
        s->cap = cap;
    }
    if ((o = calloc(1, sizeof *o)) == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&o->url, fmt, ap);
    va_end(ap);
    if (n < 0 || (o->name = strdup(name)) == NULL) {
        if (n < 0)
            o->url = NULL;
        ipk__obj_free(o);
        return NULL;
    }
    o->kind = k;
    o->tr = s->cur;
    o->id = -1;
    o->size = o->msgs = o->bytes = -1;
    o->owner_gone = -1;
    o->carries = (k->flags & IPK__OK_CARRIES) != 0;
    o->why = "";
    s->v[s->n++] = o;
    return o;
}

void ipk__obj_stat(ipk__obj *o, const struct stat *st)
{
    o->uid = st->st_uid;
    o->mode = st->st_mode & 07777;
    o->dev = st->st_dev;
    o->ino = st->st_ino;
    o->has_ino = 1;
}

static void ipk__obj_pid(ipk__obj *o, pid_t pid)
{
    for (int i = 0; i < o->npids; i++)
        if (o->pids[i] == pid)
            return;
    if (o->npids < IPK__OBJ_PIDS)
        o->pids[o->npids++] = pid;
}

void ipk__obj_kpid(ipk__obj *o, pid_t pid)
{
    if (pid <= 0)
        return;
    ipk__obj_pid(o, pid);
    o->kpids = 1;
}

void ipk__obj_holder(ipk__obj *o, pid_t pid, int reader)
{
    ipk__obj_pid(o, pid);
    o->readers += reader;
}

void ipk__obj_note(ipk__objset *s, const char *fmt, ...)
{
    char *m, **v = realloc(s->notes, (s->nnotes + 1) * sizeof *v);
    if (v == NULL)
        return;
    s->notes = v;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&m, fmt, ap);
    va_end(ap);
    if (n >= 0)
        s->notes[s->nnotes++] = m;
}

int ipk__obj_pid_alive(pid_t pid)
{
    if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
        return 0;
    /* A zombie has died: it only waits to be reaped. */
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *s = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    return !(s && (s[1] == ' ') && (s[2] == 'Z' || s[2] == 'X'));
}

void ipk__obj_settle_used(ipk__obj *o, const ipk__objset *s)
{
    (void)s;
    o->owner_gone = o->alive ? 0 : o->kpids ? 1 : -1;
    o->why = o->alive   ? "a process that used it is alive"
             : o->kpids ? "every process that used it is gone"
                        : "never used: no process to check";
}

/* The rule for kinds without their own: holders decide. */
void ipk__obj_settle_holders(ipk__obj *o, const ipk__objset *s)
{
    if (o->alive) {
        o->owner_gone = 0;
        o->why = "open or mapped in a live process";
    } else if (s->partial) {
        o->owner_gone = -1;
        o->why = "no holder seen, but some processes could not be inspected";
    } else {
        o->owner_gone = 1;
        o->why = "no process has it open or mapped";
    }
}

static void ipk__obj_settle(ipk__objset *s, ipk__obj *o)
{
    o->alive = 0;
    for (int i = 0; i < o->npids; i++)
        o->alive += ipk__obj_pid_alive(o->pids[i]);
    if (o->kind->settle)
        o->kind->settle(o, s);
    else
        ipk__obj_settle_holders(o, s);
    if (o->owner_gone == 0) {
        o->state = IPK_OBJ_IN_USE;
    } else if (o->owner_gone < 0) {
        o->state = IPK_OBJ_UNKNOWN;
    } else if (o->msgs > 0 || o->bytes > 0) {
        o->state = IPK_OBJ_UNDELIVERED;
        o->why = "its owner is gone, and messages wait to be delivered";
    } else if (o->carries && o->msgs < 0 && o->bytes < 0) {
        o->state = IPK_OBJ_UNKNOWN;
        o->why = "its owner is gone, but whether messages wait could not be read";
    } else {
        o->state = IPK_OBJ_STALE;
    }
    o->settled = 1;
}

/* Finds the holders of the objects added since the last settle, then their states. */
static void ipk__objs_settle(ipk__objset *s)
{
    ipk__obj_holders(s, s->settled_upto);
    for (size_t i = s->settled_upto; i < s->n; i++)
        ipk__obj_settle(s, s->v[i]);
    s->settled_upto = s->n;
}

int ipk_objects_scan(ipk_objects *l, const char *const *dirs)
{
    static const char *const defaults[] = {"/tmp", "/run", NULL};
    if (l == NULL)
        return ipk__err(-EINVAL, "ipk_objects_scan: NULL list");
    ipk__err_clear();
    int r = ipk__obj_walk(l, dirs ? dirs : defaults);
    for (size_t i = 0; r == 0 && ipk__transport_at(i); i++) {
        const ipk__transport *tr = ipk__transport_at(i);
        if (tr->objects == NULL || !ipk__transport_built(tr))
            continue;
        l->cur = tr;
        int e = tr->objects(l);
        if (e == -ENOMEM)
            r = e;
        l->cur = NULL;
    }
    if (r == 0)
        ipk__foreign_objects(l);
    for (size_t i = 0; i < l->nfiles; i++)
        free(l->files[i].path);
    free(l->files);
    l->files = NULL;
    l->nfiles = 0;
    ipk__objs_settle(l);
    return r;
}

int ipk_objects_resolve(ipk_objects *l, const char *url)
{
    if (l == NULL || url == NULL)
        return ipk__err(-EINVAL, "ipk_objects_resolve: NULL argument");
    ipk__err_clear();
    int r;
    size_t before = l->n;
    if (ipk__foreign_resolve(l, url, &r) == 0) {
        ipk__addr a;
        if ((r = ipk__addr_parse(&a, url)) != 0)
            return r;
        const ipk__transport *tr = a.tr;
        r = 0;
        for (const ipk__kv *kv = a.query; kv && r == 0; kv = kv->next)
            if (!ipk__transport_key(tr, kv->key))
                r = ipk__err(IPK_EOPTION, "%s: unknown option '%s' for %s:", url, kv->key,
                             tr->scheme);
        if (r == 0 && !ipk__transport_built(tr))
            r = ipk__err(IPK_ENOTBUILT, "%s: the %s: transport is not built in this version", url,
                         tr->scheme);
        if (r == 0 && tr->resolve == NULL)
            r = ipk__err(IPK_ENOTSUP, "%s: %s: addresses name no kernel object", url, tr->scheme);
        if (r == 0) {
            /* A channel that is parsed and never opened: the transport reads its address and
             * options with its usual getters. */
            ipk_chan c;
            memset(&c, 0, sizeof c);
            c.tr = tr;
            c.addr = a;
            c.opts = a.query;
            c.rfd = c.wfd = -1;
            c.perm = 0600;
            l->cur = tr;
            r = tr->resolve(&c, l);
            l->cur = NULL;
            if (r == -ENOENT && ipk_errmsg()[0] == '\0')
                ipk__err(-ENOENT, "%s: no such object", url);
        }
        ipk__addr_free(&a);
    }
    if (r == 0 && l->n == before)
        r = ipk__err(-ENOENT, "%s: no such object", url);
    ipk__objs_settle(l);
    return r;
}

size_t ipk_objects_count(const ipk_objects *l)
{
    return l ? l->n : 0;
}

const ipk_object *ipk_objects_at(const ipk_objects *l, size_t i)
{
    return l && i < l->n ? l->v[i] : NULL;
}

int ipk_objects_partial(const ipk_objects *l)
{
    return l ? l->partial : 0;
}

const char *ipk_objects_note(const ipk_objects *l, size_t i)
{
    return l && i < l->nnotes ? l->notes[i] : NULL;
}

/* The kinds: each transport's, in registry order (a kind shared by several schemes once), then
 * the foreign ones. */
const char *ipk_object_kind_at(size_t i)
{
    size_t n = 0;
    for (size_t t = 0; ipk__transport_at(t); t++) {
        const ipk__transport *tr = ipk__transport_at(t);
        for (const ipk__objkind *const *k = tr->kinds; k && *k; k++) {
            int seen = 0;
            for (size_t u = 0; u < t && !seen; u++)
                for (const ipk__objkind *const *j = ipk__transport_at(u)->kinds; j && *j; j++)
                    seen |= *j == *k;
            if (!seen && n++ == i)
                return (*k)->name;
        }
    }
    for (const ipk__objkind *const *k = ipk__foreign_kinds; *k; k++)
        if (n++ == i)
            return (*k)->name;
    return NULL;
}

const char *ipk_object_kind(const ipk_object *o)
{
    return o ? o->kind->name : NULL;
}

const char *ipk_object_scheme(const ipk_object *o)
{
    return o && o->tr ? o->tr->scheme : NULL;
}

const char *ipk_object_name(const ipk_object *o)
{
    return o ? o->name : NULL;
}

const char *ipk_object_url(const ipk_object *o)
{
    return o ? o->url : NULL;
}

long ipk_object_id(const ipk_object *o)
{
    return o ? o->id : -1;
}

uid_t ipk_object_uid(const ipk_object *o)
{
    return o ? o->uid : (uid_t)-1;
}

unsigned ipk_object_mode(const ipk_object *o)
{
    return o ? o->mode : 0;
}

long long ipk_object_size(const ipk_object *o)
{
    return o ? o->size : -1;
}

long long ipk_object_messages(const ipk_object *o)
{
    return o ? o->msgs : -1;
}

long long ipk_object_bytes(const ipk_object *o)
{
    return o ? o->bytes : -1;
}

size_t ipk_object_npids(const ipk_object *o)
{
    return o ? (size_t)o->npids : 0;
}

pid_t ipk_object_pid(const ipk_object *o, size_t i)
{
    return o && i < (size_t)o->npids ? o->pids[i] : -1;
}

int ipk_object_holders(const ipk_object *o)
{
    return o ? o->alive : 0;
}

int ipk_object_owner_gone(const ipk_object *o)
{
    return o ? o->owner_gone : -1;
}

int ipk_object_state(const ipk_object *o)
{
    return o ? o->state : IPK_OBJ_UNKNOWN;
}

const char *ipk_object_why(const ipk_object *o)
{
    return o ? o->why : "";
}

int ipk_object_remove(const ipk_object *o, unsigned flags)
{
    ipk__err_clear();
    if (o == NULL)
        return ipk__err(-EINVAL, "ipk_object_remove: NULL object");
    if (o->uid != geteuid() && !(flags & IPK_OBJ_ALL_USERS))
        return ipk__err(-EPERM,
                        "%s: belongs to uid %u, not to this process (uid %u): another user's "
                        "object is removed only when all users are asked for (IPK_OBJ_ALL_USERS, "
                        "ipckit rm --all-users)",
                        o->url, (unsigned)o->uid, (unsigned)geteuid());
    if (o->state == IPK_OBJ_IN_USE)
        return ipk__err(-EBUSY, "%s: in use: %s", o->url, o->why);
    if (o->state == IPK_OBJ_UNDELIVERED && !(flags & IPK_OBJ_FORCE))
        return ipk__err(-ENOTEMPTY, "%s: %s (only a forced removal takes it)", o->url, o->why);
    return o->kind->remove(o, flags);
}
