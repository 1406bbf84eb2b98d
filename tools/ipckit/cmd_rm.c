/*
 * cmd_rm.c - ipckit rm URL... | rm --stale: removes exactly the objects named, or exactly those
 * whose owner is gone and in which nothing waits; never one in use, and one holding undelivered
 * messages only with --force. Addresses are read by their transport's own parser
 * (ipk_objects_resolve). Asks nothing; prints what it removed.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void rm_usage(FILE *f)
{
    fprintf(f, "usage: ipckit rm [OPTIONS] URL...\n"
               "       ipckit rm --stale [OPTIONS]\n"
               "Removes the IPC objects named (the URL column of 'ipckit ls': mq:/NAME,\n"
               "shm:/NAME, fifo:PATH, unix:PATH, sysv:PATH?proj=N, sysv:KEY, sem:/NAME,\n"
               "sysv-msg:ID, sysv-shm:ID, sysv-sem:ID), or with --stale every object of yours\n"
               "whose owner is gone and in which nothing waits. Another user's object is\n"
               "removed only by root (named, or with --all-users). An object in use (held open,\n"
               "mapped, attached, a socket someone is bound to, a queue a live process used) is\n"
               "never removed; one whose owner is gone but that holds undelivered messages is\n"
               "removed only with --force.\n\n"
               "  -s, --stale      remove the stale objects (with URLs: only those of them)\n"
               "  -f, --force      also remove objects holding undelivered messages (they are\n"
               "                   lost); never one in use\n"
               "  -a, --all-users  with --stale and no URL: every user's objects (root only;\n"
               "                   default: only the caller's)\n"
               "  -n, --dry-run    say what would be removed, remove nothing\n"
               "  -D, --dir DIR    with --stale: where to look for FIFOs and sockets\n"
               "                   (repeatable; default /tmp and /run)\n"
               "  -k, --kind K,...  only objects of these kinds (ipckit info --kinds lists them)\n"
               "  -h, --help\n\n"
               "Exit status: 0 everything named was removed, 1 something was missing, in use or\n"
               "held messages, 2 usage error.\n");
}

static int rm_one(const ipk_object *o, unsigned flags, int dry)
{
    if (dry) {
        printf("would remove %s\n", ipk_object_url(o));
        return CLI_OK;
    }
    int r = ipk_object_remove(o, flags);
    if (r != 0) {
        fprintf(stderr, "ipckit rm: %s\n", ipk_errmsg()[0] ? ipk_errmsg() : ipk_strerror(r));
        return CLI_FAIL;
    }
    printf("removed %s\n", ipk_object_url(o));
    return CLI_OK;
}

/* Says why o stays. */
static void refuse(const ipk_object *o)
{
    int st = ipk_object_state(o);
    if (st == IPK_OBJ_UNDELIVERED) {
        long long m = ipk_object_messages(o);
        fprintf(stderr, "ipckit rm: %s: not removed: its owner is gone but ", ipk_object_url(o));
        if (m >= 0)
            fprintf(stderr, "%lld messages wait", m);
        else
            fprintf(stderr, "%lld bytes wait", ipk_object_bytes(o));
        fprintf(stderr, " to be delivered (--force removes them)\n");
        return;
    }
    fprintf(stderr, "ipckit rm: %s: %s, not removed: %s", ipk_object_url(o),
            st == IPK_OBJ_IN_USE ? "in use" : "not known to be stale", ipk_object_why(o));
    for (size_t k = 0; k < ipk_object_npids(o); k++)
        fprintf(stderr, "%s%d", k ? "," : " (pid ", (int)ipk_object_pid(o, k));
    fprintf(stderr, "%s\n", ipk_object_npids(o) ? ")" : "");
}

/* Whether rm may remove o: never in use; stale only with --stale; messages only with --force. */
static int may_go(const ipk_object *o, int stale, int force)
{
    switch (ipk_object_state(o)) {
    case IPK_OBJ_STALE:
        return 1;
    case IPK_OBJ_UNDELIVERED:
        return force;
    case IPK_OBJ_UNKNOWN:
        return !stale;
    default:
        return 0;
    }
}

/* rm --stale without URL: the caller's objects (or everybody's with --all-users) that may go;
 * an object holding messages is named on standard error and kept. */
static int rm_stale(const obj_where *w, int all, int force, int dry)
{
    ipk_objects *l;
    int rc = obj_scan(w, "rm", &l);
    uid_t me = geteuid();
    for (size_t i = 0; rc == CLI_OK && i < ipk_objects_count(l); i++) {
        const ipk_object *o = ipk_objects_at(l, i);
        if (!obj_wanted(w, o) || (!all && ipk_object_uid(o) != me))
            continue;
        if (may_go(o, 1, force)) {
            if (rm_one(o, (force ? IPK_OBJ_FORCE : 0) | (all ? IPK_OBJ_ALL_USERS : 0), dry) !=
                CLI_OK)
                rc = CLI_FAIL;
        } else if (ipk_object_state(o) == IPK_OBJ_UNDELIVERED) {
            refuse(o);
        }
    }
    ipk_objects_free(l);
    return rc;
}

int cmd_rm(int argc, char **argv)
{
    static const struct option lo[] = {
        {"stale", no_argument, 0, 's'},     {"force", no_argument, 0, 'f'},
        {"all-users", no_argument, 0, 'a'}, {"dry-run", no_argument, 0, 'n'},
        {"dir", required_argument, 0, 'D'}, {"kind", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
    obj_where w;
    obj_where_init(&w);
    int stale = 0, force = 0, all = 0, dry = 0, opt, rc = CLI_OK;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "sfanD:k:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'k':
        case 'D':
            if (obj_where_opt(&w, "rm", opt, optarg) != 0)
                return CLI_USAGE;
            break;
        case 's':
            stale = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'a':
            all = 1;
            break;
        case 'n':
            dry = 1;
            break;
        case 'h':
            rm_usage(stdout);
            return CLI_OK;
        default:
            rm_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind == argc && !stale)
        return cli_usage_err("rm", "name the objects to remove, or give --stale");
    if (all && (optind != argc || !stale))
        return cli_usage_err("rm", "--all-users goes with --stale and no URL");
    if (all && geteuid() != 0)
        return cli_usage_err("rm", "--all-users: only root may remove other users' objects");
    if (optind == argc)
        return rm_stale(&w, all, force, dry);
    /* Every name is checked before anything is removed, so a typo removes nothing. */
    ipk_objects *l;
    if (ipk_objects_new(&l) != 0)
        return cli_fail("rm", "listing objects", -ENOMEM);
    for (int i = optind; i < argc; i++) {
        int r = ipk_objects_resolve(l, argv[i]);
        if (r == IPK_EADDR || r == IPK_EOPTION || r == IPK_ENOTSUP || r == IPK_ENOTBUILT) {
            fprintf(stderr, "ipckit rm: %s names nothing rm can remove: %s\n", argv[i],
                    ipk_errmsg());
            ipk_objects_free(l);
            return CLI_USAGE;
        }
        if (r != 0) {
            fprintf(stderr, "ipckit rm: %s\n", ipk_errmsg()[0] ? ipk_errmsg() : ipk_strerror(r));
            rc = CLI_FAIL;
        }
    }
    /* Root naming another user's object asks for it; anyone else is refused it by the library,
     * even where the kernel would allow the removal. */
    unsigned users = geteuid() == 0 ? IPK_OBJ_ALL_USERS : 0;
    for (size_t i = 0; i < ipk_objects_count(l); i++) {
        const ipk_object *o = ipk_objects_at(l, i);
        if (!obj_wanted(&w, o))
            continue;
        if (!may_go(o, stale, force)) {
            refuse(o);
            rc = CLI_FAIL;
        } else if (rm_one(o, (force ? IPK_OBJ_FORCE : 0) | users, dry) != CLI_OK) {
            rc = CLI_FAIL;
        }
    }
    ipk_objects_free(l);
    return rc;
}
