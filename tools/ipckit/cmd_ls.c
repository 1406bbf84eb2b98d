/*
 * cmd_ls.c - ipckit ls: every IPC object on the machine in one table (or JSON), with its owner,
 * mode, size or depth, the processes that hold it, and whether it is stale.
 */
#define _GNU_SOURCE 1
#include <getopt.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void ls_usage(FILE *f)
{
    fprintf(f, "usage: ipckit ls [OPTIONS]\n"
               "Lists POSIX shared memory, semaphores and queues, System V queues, segments and\n"
               "semaphore sets, FIFOs and Unix sockets, with owner, mode, size or depth, the\n"
               "processes holding each one, and whether it is stale (its users are gone).\n\n"
               "  -j, --json       one JSON document instead of the table\n"
               "  -s, --stale      only the stale objects (those rm --stale removes)\n"
               "  -D, --dir DIR    where to look for FIFOs and socket files (repeatable;\n"
               "                   default /tmp and /run, 4 levels deep)\n"
               "  -k, --kind K,...  only objects of these kinds: posix-shm posix-sem posix-mq\n"
               "                   sysv-msg sysv-shm sysv-sem fifo unix-socket unix-abstract\n"
               "  -h, --help\n\n"
               "STALE is yes (rm --stale may remove it), no (in use), or ? (cannot tell).\n"
               "Exit status: 0 listed, 1 failure, 2 usage error.\n");
}

static const char *stale_word(enum obj_stale s)
{
    return s == STALE_YES ? "yes" : s == STALE_NO ? "no" : "?";
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static const char *owner_name(uid_t uid, char *buf, size_t cap)
{
    struct passwd *pw = getpwuid(uid);
    if (pw != NULL)
        snprintf(buf, cap, "%s", pw->pw_name);
    else
        snprintf(buf, cap, "%u", (unsigned)uid);
    return buf;
}

static void print_json(const obj_list *l, int only_stale)
{
    char who[64];
    printf("{\"objects\":[");
    int first = 1;
    for (size_t i = 0; i < l->n; i++) {
        const obj *o = &l->v[i];
        if (only_stale && o->stale != STALE_YES)
            continue;
        printf("%s\n{\"kind\":\"%s\",\"url\":", first ? "" : ",", obj_kind_name(o->kind));
        json_str(o->url);
        printf(",\"name\":");
        json_str(o->name);
        printf(",\"id\":%ld,\"uid\":%u,\"owner\":", o->id, (unsigned)o->uid);
        json_str(owner_name(o->uid, who, sizeof who));
        printf(",\"mode\":\"%04o\",\"size\":%lld,\"depth\":%lld,\"pids\":[", (unsigned)o->mode,
               o->size, o->depth);
        for (int k = 0; k < o->npids; k++)
            printf("%s%d", k ? "," : "", (int)o->pids[k]);
        printf("],\"holders\":%d,\"stale\":%s,\"why\":", o->nholders,
               o->stale == STALE_YES  ? "true"
               : o->stale == STALE_NO ? "false"
                                      : "null");
        json_str(o->why);
        putchar('}');
        first = 0;
    }
    printf("\n],\"partial\":%s,\"notes\":[", l->partial ? "true" : "false");
    const char *p = l->notes;
    for (int k = 0; *p; k++) {
        size_t n = strcspn(p, "\n");
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        printf("%s", k ? "," : "");
        json_str(line);
        p += n + (p[n] == '\n');
    }
    printf("]}\n");
}

static void print_table(const obj_list *l, int only_stale)
{
    char who[64], pids[64], paint[64], num[32], dep[32];
    printf("%-13s %-10s %-5s %10s %6s %-14s %-5s %s\n", "KIND", "OWNER", "MODE", "SIZE", "DEPTH",
           "PIDS", "STALE", "URL");
    for (size_t i = 0; i < l->n; i++) {
        const obj *o = &l->v[i];
        if (only_stale && o->stale != STALE_YES)
            continue;
        size_t n = 0;
        pids[0] = '\0';
        for (int k = 0; k < o->npids && n < sizeof pids - 12; k++)
            n += (size_t)snprintf(pids + n, sizeof pids - n, "%s%d", k ? "," : "", (int)o->pids[k]);
        snprintf(num, sizeof num, o->size >= 0 ? "%lld" : "-", o->size);
        snprintf(dep, sizeof dep, o->depth >= 0 ? "%lld" : "-", o->depth);
        const char *sw = stale_word(o->stale);
        printf("%-13s %-10s %04o  %10s %6s %-14s %s%*s %s\n", obj_kind_name(o->kind),
               owner_name(o->uid, who, sizeof who), (unsigned)o->mode, num, dep,
               pids[0] ? pids : "-",
               cli_paint(stdout,
                         o->stale == STALE_YES  ? "31"
                         : o->stale == STALE_NO ? "32"
                                                : "33",
                         sw, paint, sizeof paint),
               (int)(5 - strlen(sw)), "", o->url);
    }
}

int cmd_ls(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, 0, 'j'},      {"stale", no_argument, 0, 's'},
        {"dir", required_argument, 0, 'D'}, {"kind", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
    obj_where w;
    obj_where_init(&w);
    int json = 0, only_stale = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+jsD:k:h", lo, NULL)) != -1) {
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
    obj_list l = {0};
    obj_scan(&l, w.dirs);
    obj_filter(&l, w.kinds);
    if (json) {
        print_json(&l, only_stale);
    } else {
        print_table(&l, only_stale);
        if (l.notes[0])
            fprintf(stderr, "%s", l.notes);
        if (l.partial)
            fprintf(stderr, "ipckit ls: some processes could not be inspected: STALE '?' where "
                            "no holder was seen\n");
    }
    obj_list_free(&l);
    return CLI_OK;
}
