/*
 * cmd_rm.c - ipckit rm URL... | rm --stale: removes exactly the objects named, or exactly those
 * whose users are gone; never one in use. Asks nothing; prints what it removed.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void rm_usage(FILE *f)
{
    fprintf(f, "usage: ipckit rm [OPTIONS] URL...\n"
               "       ipckit rm --stale [OPTIONS]\n"
               "Removes the IPC objects named (mq:/NAME, shm:/NAME, sem:/NAME, fifo:PATH,\n"
               "unix:PATH, sysv:KEY, sysv:PATH?proj=N, sysv-msg:ID, sysv-shm:ID, sysv-sem:ID -\n"
               "the URL column of 'ipckit ls'), or with --stale every object whose users are\n"
               "gone. An object in use (held open, mapped, attached, a socket someone is bound\n"
               "to, a queue a live process used) is never removed.\n\n"
               "  -s, --stale      remove the stale objects (with URLs: only those of them)\n"
               "  -n, --dry-run    say what would be removed, remove nothing\n"
               "  -D, --dir DIR    with --stale: where to look for FIFOs and sockets\n"
               "                   (repeatable; default /tmp and /run)\n"
               "  -k, --kind K,...  only objects of these kinds: posix-shm posix-sem posix-mq\n"
               "                   sysv-msg sysv-shm sysv-sem fifo unix-socket unix-abstract\n"
               "  -h, --help\n\n"
               "Exit status: 0 everything named was removed, 1 something was missing or in use,\n"
               "2 usage error.\n");
}

static int rm_one(const obj *o, int dry)
{
    if (dry) {
        printf("would remove %s\n", o->url);
        return CLI_OK;
    }
    int r = obj_remove(o);
    if (r != 0) {
        fprintf(stderr, "ipckit rm: %s: %s\n", o->url, strerror(-r));
        return CLI_FAIL;
    }
    printf("removed %s\n", o->url);
    return CLI_OK;
}

static void refuse(const obj *o)
{
    fprintf(stderr, "ipckit rm: %s: in use, not removed: %s", o->url, o->why);
    for (int k = 0; k < o->npids; k++)
        fprintf(stderr, "%s%d", k ? "," : " (pid ", (int)o->pids[k]);
    fprintf(stderr, "%s\n", o->npids ? ")" : "");
}

int cmd_rm(int argc, char **argv)
{
    static const struct option lo[] = {
        {"stale", no_argument, 0, 's'},     {"dry-run", no_argument, 0, 'n'},
        {"dir", required_argument, 0, 'D'}, {"kind", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
    obj_where w;
    obj_where_init(&w);
    int stale = 0, dry = 0, opt, rc = CLI_OK;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+snD:k:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'k':
        case 'D':
            if (obj_where_opt(&w, "rm", opt, optarg) != 0)
                return CLI_USAGE;
            break;
        case 's':
            stale = 1;
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
    obj_list l = {0};
    if (optind == argc) {
        obj_scan(&l, w.dirs);
        obj_filter(&l, w.kinds);
        for (size_t i = 0; i < l.n; i++)
            if (l.v[i].stale == STALE_YES && rm_one(&l.v[i], dry) != CLI_OK)
                rc = CLI_FAIL;
        obj_list_free(&l);
        return rc;
    }
    /* Every name is checked before anything is removed, so a typo removes nothing. */
    for (int i = optind; i < argc; i++) {
        l.notes[0] = '\0';
        int r = obj_add_url(&l, argv[i]);
        if (r == -EINVAL) {
            fprintf(stderr, "ipckit rm: %s", l.notes);
            obj_list_free(&l);
            return CLI_USAGE;
        }
        if (r != 0) {
            fprintf(stderr, "ipckit rm: %s: %s\n", argv[i],
                    r == -ENOENT ? "no such object" : strerror(-r));
            rc = CLI_FAIL;
        }
    }
    obj_settle(&l);
    obj_filter(&l, w.kinds);
    for (size_t i = 0; i < l.n; i++) {
        const obj *o = &l.v[i];
        if (o->stale == STALE_NO || (stale && o->stale != STALE_YES)) {
            refuse(o);
            rc = CLI_FAIL;
        } else if (rm_one(o, dry) != CLI_OK) {
            rc = CLI_FAIL;
        }
    }
    obj_list_free(&l);
    return rc;
}
