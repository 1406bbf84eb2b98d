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

/* Length of the valid UTF-8 sequence at s, 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf8)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong three- and four-byte forms, surrogates and code points above U+10FFFF. */
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* A JSON string: valid UTF-8 passes through, so that a name printed here is the name rm takes;
 * a byte that is not UTF-8 (JSON cannot carry it) is written as the code point of that value. */
static void json_str(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    putchar('"');
    while (*s) {
        size_t n = *s >= 0x80 ? utf8_len(s) : 0;
        if (n > 0) {
            fwrite(s, 1, n, stdout);
            s += n;
            continue;
        }
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if (*s < 0x20 || *s >= 0x7f)
            printf("\\u%04x", *s);
        else
            putchar(*s);
        s++;
    }
    putchar('"');
}

static void print_json(const ipk_objects *l, const obj_where *w, int only_stale)
{
    char who[64];
    printf("{\"objects\":[");
    int first = 1;
    for (size_t i = 0; i < ipk_objects_count(l); i++) {
        const ipk_object *o = ipk_objects_at(l, i);
        int st = ipk_object_state(o), gone = ipk_object_owner_gone(o);
        if (!obj_wanted(w, o) || (only_stale && st != IPK_OBJ_STALE))
            continue;
        printf("%s\n{\"kind\":\"%s\",\"url\":", first ? "" : ",", ipk_object_kind(o));
        json_str(ipk_object_url(o));
        printf(",\"name\":");
        json_str(ipk_object_name(o));
        printf(",\"scheme\":");
        if (ipk_object_scheme(o))
            json_str(ipk_object_scheme(o));
        else
            printf("null");
        printf(",\"id\":%ld,\"uid\":%u,\"owner\":", ipk_object_id(o), (unsigned)ipk_object_uid(o));
        json_str(obj_owner(ipk_object_uid(o), who, sizeof who));
        printf(",\"mode\":\"%04o\",\"size\":%lld,\"depth\":%lld,\"messages\":%lld,\"bytes\":%lld,"
               "\"pids\":[",
               ipk_object_mode(o), ipk_object_size(o), ipk_object_messages(o),
               ipk_object_messages(o), ipk_object_bytes(o));
        for (size_t k = 0; k < ipk_object_npids(o); k++)
            printf("%s%d", k ? "," : "", (int)ipk_object_pid(o, k));
        printf("],\"holders\":%d,\"owner_gone\":%s,\"state\":\"%s\",\"stale\":%s,\"why\":",
               ipk_object_holders(o),
               gone > 0    ? "true"
               : gone == 0 ? "false"
                           : "null",
               obj_state_word(st),
               st == IPK_OBJ_STALE     ? "true"
               : st == IPK_OBJ_UNKNOWN ? "null"
                                       : "false");
        json_str(ipk_object_why(o));
        putchar('}');
        first = 0;
    }
    printf("\n],\"partial\":%s,\"notes\":[", ipk_objects_partial(l) ? "true" : "false");
    for (size_t k = 0; ipk_objects_note(l, k); k++) {
        printf("%s", k ? "," : "");
        json_str(ipk_objects_note(l, k));
    }
    printf("]}\n");
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
