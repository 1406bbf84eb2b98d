/*
 * objects.c - what `ipckit ls` and `ipckit rm` share: the -D and -k options and the words for an
 * object's state. Finding objects, naming them and deciding whether they may go is the
 * library's (ipk_objects_scan, ipk_objects_resolve, ipk_object_state): no kind, scheme or
 * address grammar lives here.
 */
#define _GNU_SOURCE 1
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void obj_where_init(obj_where *w)
{
    memset(w, 0, sizeof *w);
}

/* Whether the n bytes at k name a kind of the library. */
static int obj_kind_known(const char *k, size_t n)
{
    for (size_t i = 0; ipk_object_kind_at(i); i++)
        if (strlen(ipk_object_kind_at(i)) == n && strncmp(ipk_object_kind_at(i), k, n) == 0)
            return 1;
    return 0;
}

int obj_where_opt(obj_where *w, const char *cmd, int opt, const char *arg)
{
    if (opt == 'k') {
        for (const char *p = arg;; p++) {
            size_t n = strcspn(p, ",");
            if (!obj_kind_known(p, n)) {
                char list[512];
                size_t m = 0;
                list[0] = '\0';
                for (size_t i = 0; ipk_object_kind_at(i) && m < sizeof list; i++)
                    m += (size_t)snprintf(list + m, sizeof list - m, " %s", ipk_object_kind_at(i));
                return cli_usage_err(cmd, "--kind %s: kinds are%s", arg, list);
            }
            p += n;
            if (*p == '\0')
                break;
        }
        w->kinds = arg;
    }
    if (opt == 'D') {
        if (w->ndirs == OBJ_MAX_DIRS)
            return cli_usage_err(cmd, "at most %d --dir options", OBJ_MAX_DIRS);
        w->dirs[w->ndirs++] = arg; /* the first -D replaces the defaults */
        w->dirs[w->ndirs] = NULL;
    }
    return 0;
}

int obj_wanted(const obj_where *w, const ipk_object *o)
{
    if (w->kinds == NULL)
        return 1;
    const char *k = ipk_object_kind(o);
    size_t kn = strlen(k);
    for (const char *p = w->kinds;;) {
        size_t n = strcspn(p, ",");
        if (n == kn && strncmp(p, k, n) == 0)
            return 1;
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

int obj_scan(const obj_where *w, const char *cmd, ipk_objects **out)
{
    int r = ipk_objects_new(out);
    if (r == 0)
        r = ipk_objects_scan(*out, w->ndirs ? w->dirs : NULL);
    return r == 0 ? CLI_OK : cli_fail(cmd, "listing objects", r);
}

const char *obj_state_word(int state)
{
    switch (state) {
    case IPK_OBJ_IN_USE:
        return "in-use";
    case IPK_OBJ_STALE:
        return "stale";
    case IPK_OBJ_UNDELIVERED:
        return "undelivered";
    default:
        return "?";
    }
}

const char *obj_owner(uid_t uid, char *buf, size_t cap)
{
    struct passwd *pw = getpwuid(uid);
    if (pw != NULL)
        snprintf(buf, cap, "%s", pw->pw_name);
    else
        snprintf(buf, cap, "%u", (unsigned)uid);
    return buf;
}
