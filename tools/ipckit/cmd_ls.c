/*
 * cmd_ls.c - ipckit ls: every IPC object on the machine in one table (or JSON), with its owner,
 * mode, size, what waits in it, the processes that hold it, and its state - as the library
 * finds them (ipk_objects_scan).
 */
#define _GNU_SOURCE 1
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static void ls_usage(FILE *f)
{
    fprintf(f, "usage: ipckit ls [OPTIONS]\n"
               "Lists POSIX shared memory, semaphores and queues, System V queues, segments and\n"
               "semaphore sets, FIFOs and Unix sockets, with owner, mode, size, what waits in\n"
               "them, the processes holding each one, and its state.\n\n"
               "  -j, --json       one JSON document instead of the table\n"
               "  -s, --stale      only the stale objects (those rm --stale removes)\n"
               "  -D, --dir DIR    where to look for FIFOs and socket files (repeatable;\n"
               "                   default /tmp and /run, 4 levels deep)\n"
               "  -k, --kind K,...  only objects of these kinds (ipckit info --kinds lists them)\n"
               "  -h, --help\n\n"
               "STATE is in-use (a live process holds it), stale (its owner is gone and nothing\n"
               "waits in it: rm --stale removes it), undelivered (its owner is gone but messages\n"
               "wait: only rm --force removes it), or ? (cannot tell). DEPTH is the number of\n"
               "messages waiting, or bytes (B) where only those are known.\n"
               "Exit status: 0 listed, 1 failure, 2 usage error.\n");
}

/* Strings through the tool's one JSON writer (json.c): valid UTF-8 passes through, so that a
 * name printed here is the name rm takes; a name that is not UTF-8 goes in "KEY_base64". */
static void json_text(json_w *j, const char *key, const char *v)
{
    if (v == NULL) {
        json_key(j, key);
        json_null(j);
    } else {
        json_bytes(j, key, v, strlen(v));
    }
}

static void json_long(json_w *j, const char *key, long long v)
{
    json_key(j, key);
    json_int(j, v);
}

static void print_json(const ipk_objects *l, const obj_where *w, int only_stale)
{
    char who[64], mode[8];
    json_w j;
    json_init(&j, stdout);
    json_obj(&j);
    json_key(&j, "objects");
    json_arr(&j);
    for (size_t i = 0; i < ipk_objects_count(l); i++) {
        const ipk_object *o = ipk_objects_at(l, i);
        int st = ipk_object_state(o), gone = ipk_object_owner_gone(o);
        if (!obj_wanted(w, o) || (only_stale && st != IPK_OBJ_STALE))
            continue;
        json_nl(&j);
        json_obj(&j);
        json_text(&j, "kind", ipk_object_kind(o));
        json_text(&j, "url", ipk_object_url(o));
        json_text(&j, "name", ipk_object_name(o));
        json_text(&j, "scheme", ipk_object_scheme(o));
        json_long(&j, "id", ipk_object_id(o));
        json_long(&j, "uid", (long long)ipk_object_uid(o));
        json_text(&j, "owner", obj_owner(ipk_object_uid(o), who, sizeof who));
        snprintf(mode, sizeof mode, "%04o", ipk_object_mode(o));
        json_text(&j, "mode", mode);
        json_long(&j, "size", ipk_object_size(o));
        json_long(&j, "depth", ipk_object_messages(o));
        json_long(&j, "messages", ipk_object_messages(o));
        json_long(&j, "bytes", ipk_object_bytes(o));
        json_key(&j, "pids");
        json_arr(&j);
        for (size_t k = 0; k < ipk_object_npids(o); k++)
            json_int(&j, (int)ipk_object_pid(o, k));
        json_end(&j);
        json_long(&j, "holders", ipk_object_holders(o));
        json_key(&j, "owner_gone");
        if (gone < 0)
            json_null(&j);
        else
            json_bool(&j, gone > 0);
        json_text(&j, "state", obj_state_word(st));
        json_key(&j, "stale");
        if (st == IPK_OBJ_UNKNOWN)
            json_null(&j);
        else
            json_bool(&j, st == IPK_OBJ_STALE);
        json_text(&j, "why", ipk_object_why(o));
        json_end(&j);
    }
    json_nl(&j);
    json_end(&j);
    json_key(&j, "partial");
    json_bool(&j, ipk_objects_partial(l));
    json_key(&j, "notes");
    json_arr(&j);
    for (size_t k = 0; ipk_objects_note(l, k); k++)
        json_str(&j, ipk_objects_note(l, k));
    json_end(&j);
    json_end(&j);
    putchar('\n');
}

static const char *state_color(int st)
{
    return st == IPK_OBJ_STALE ? "31" : st == IPK_OBJ_IN_USE ? "32" : "33";
}

static void print_table(const ipk_objects *l, const obj_where *w, int only_stale)
{
    char who[64], pids[64], paint[64], num[32], dep[32];
    printf("%-13s %-10s %-5s %10s %6s %-14s %-11s %s\n", "KIND", "OWNER", "MODE", "SIZE", "DEPTH",
           "PIDS", "STATE", "URL");
    for (size_t i = 0; i < ipk_objects_count(l); i++) {
        const ipk_object *o = ipk_objects_at(l, i);
        int st = ipk_object_state(o);
        if (!obj_wanted(w, o) || (only_stale && st != IPK_OBJ_STALE))
            continue;
        size_t n = 0;
        pids[0] = '\0';
        for (size_t k = 0; k < ipk_object_npids(o) && n < sizeof pids - 12; k++)
            n += (size_t)snprintf(pids + n, sizeof pids - n, "%s%d", k ? "," : "",
                                  (int)ipk_object_pid(o, k));
        long long size = ipk_object_size(o), msgs = ipk_object_messages(o);
        long long bytes = ipk_object_bytes(o);
        snprintf(num, sizeof num, size >= 0 ? "%lld" : "-", size);
        if (msgs >= 0)
            snprintf(dep, sizeof dep, "%lld", msgs);
        else
            snprintf(dep, sizeof dep, bytes >= 0 ? "%lldB" : "-", bytes);
        const char *sw = obj_state_word(st);
        printf("%-13s %-10s %04o  %10s %6s %-14s %s%*s %s\n", ipk_object_kind(o),
               obj_owner(ipk_object_uid(o), who, sizeof who), ipk_object_mode(o), num, dep,
               pids[0] ? pids : "-", cli_paint(stdout, state_color(st), sw, paint, sizeof paint),
               (int)(11 - strlen(sw)), "", ipk_object_url(o));
    }
}

int cmd_ls(int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                       {"stale", no_argument, 0, 's'},
                                       {"dir", required_argument, 0, 'D'},
                                       {"kind", required_argument, 0, 'k'},
                                       {"urls", no_argument, 0, 'U'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    obj_where w;
    obj_where_init(&w);
    int json = 0, only_stale = 0, urls = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "jsD:k:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'k':
        case 'D':
            if (obj_where_opt(&w, "ls", opt, optarg) != 0)
                return CLI_USAGE;
            break;
        case 'j':
            json = 1;
            break;
        case 's':
            only_stale = 1;
            break;
        case 'U': /* for the completion: one URL a line */
            urls = 1;
            break;
        case 'h':
            ls_usage(stdout);
            return CLI_OK;
        default:
            ls_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage_err("ls", "unexpected argument '%s'", argv[optind]);
    ipk_objects *l;
    int rc = obj_scan(&w, "ls", &l);
    if (rc != CLI_OK)
        return rc;
    if (urls) {
        for (size_t i = 0; i < ipk_objects_count(l); i++)
            if (obj_wanted(&w, ipk_objects_at(l, i)))
                printf("%s\n", ipk_object_url(ipk_objects_at(l, i)));
    } else if (json) {
        print_json(l, &w, only_stale);
    } else {
        print_table(l, &w, only_stale);
        for (size_t k = 0; ipk_objects_note(l, k); k++)
            fprintf(stderr, "ipckit ls: %s\n", ipk_objects_note(l, k));
        if (ipk_objects_partial(l))
            fprintf(stderr, "ipckit ls: some processes could not be inspected: STATE '?' where "
                            "no holder was seen\n");
    }
    ipk_objects_free(l);
    return CLI_OK;
}
