/*
 * cmd_serve.c - ipckit serve: the command line over the server component (ipckit/serve.h).
 *
 * It parses options into settings and listeners, picks the handler (framed echo, raw echo with
 * --proto raw, or a program with --exec), and runs the master. On HUP the component calls
 * back here: the command line, and the --config file, are parsed again and applied, so a
 * changed config file (workers, timeouts, --exec, addresses) takes effect with the new workers.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ipckit/serve.h"

#define MAX_URLS 16

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: ipckit serve [OPTIONS] [URL...]\n"
            "A prefork server: a master and N worker processes that share the listeners and\n"
            "answer every message: echo it (default), or hand it to a program (--exec).\n"
            "URL: tcp://HOST:PORT, unix:PATH, unix:@NAME, unixpacket:PATH (connections; the\n"
            "address's framing=len|line|raw cuts the stream into messages); udp://HOST:PORT,\n"
            "unixgram:PATH (one datagram per message, replies to the sender); mq:/NAME,\n"
            "sysv:KEY, shm:/NAME?multi=1, file:PATH (a pool of workers draining a queue).\n"
            "A unix listener may say who may connect: ?allow_uid=LIST&allow_gid=LIST (ids or\n"
            "names); a peer on neither list is closed at accept.\n"
            "With no URL, the sockets passed by systemd (LISTEN_FDS) are served.\n\n"
            "  -p, --proto P             echo (default): messages back as they came, framed;\n"
            "                            raw: bytes back as they come (RFC 862, framing=raw)\n"
            "  -e, --exec CMD            each worker runs CMD (/bin/sh -c) as a coprocess: every\n"
            "                            request goes to its stdin (framed, or one line with\n"
            "                            framing=line) without waiting for earlier replies (up\n"
            "                            to 1024 in flight); it must write exactly one reply per\n"
            "                            request, in order; one that crashes, writes garbage or\n"
            "                            hangs is restarted, and every client with a request in\n"
            "                            flight has its connection closed\n"
            "  -w, --workers N           worker processes (default: the number of CPUs)\n"
            "      --max-conn N          connections per worker; more are closed at once\n"
            "                            (default 0: only the descriptor limit)\n"
            "      --max-frame BYTES     a larger declared length closes the connection (1m)\n"
            "      --idle-timeout MS     close a connection that moved no byte for MS (60000)\n"
            "      --read-timeout MS     close a connection whose request is unfinished after\n"
            "                            MS, or that sent nothing MS after it opened (10000)\n"
            "      --exec-timeout MS     --exec: a handler that does not answer in MS is\n"
            "                            restarted (10000)\n"
            "      --exec-framing F      len or line: how requests reach the --exec program\n"
            "                            (default: as the first connection address frames\n"
            "                            them; len for queues and datagrams)\n"
            "      --shutdown-timeout MS QUIT: time for work in flight, then KILL (10000)\n"
            "      --kill-timeout MS     TERM: time before KILL (3000)\n"
            "      --log FILE            event log (default: standard error); USR1 reopens it;\n"
            "                            a link or another user's file there is refused\n"
            "      --pid-file FILE       write the master's pid to FILE (removed at exit); as\n"
            "                            for --log, a link or another user's file is refused\n"
            "      --status ADDR         the master answers every connection to ADDR\n"
            "                            (unix:PATH, tcp://HOST:PORT) with a JSON snapshot of\n"
            "                            the live counters per worker (connections open and\n"
            "                            total, messages in and out, errors, timeouts,\n"
            "                            respawns), then closes it: ipckit info --status ADDR\n"
            "  -c, --config FILE         more options, one per line (\"workers 4\",\n"
            "                            \"exec python3 up.py\", \"listen URL\"; # comments);\n"
            "                            HUP reads it again\n"
            "  -h, --help\n\n"
            "Signals to the master: TERM/INT fast shutdown, QUIT graceful shutdown, HUP reload\n"
            "(configuration read again, new workers first, then the old ones retire), USR1\n"
            "reopen the log, USR2 binary upgrade (the program is run again with the same\n"
            "arguments and the listening sockets; once it serves, the old master retires\n"
            "gracefully; if it fails, the old one serves on). A crashed worker is respawned;\n"
            "workers end with their master.\n"
            "The log names each resolved address: \"listening on tcp://127.0.0.1:PORT ...\".\n"
            "Exit status: 0 after shutdown, 1 failure, 2 usage error.\n"
            "Examples:\n"
            "  ipckit serve --workers 4 tcp://127.0.0.1:7000\n"
            "  ipckit serve -w 2 --exec 'python3 upper.py' 'tcp://127.0.0.1:7000?framing=line'\n"
            "  ipckit serve -w 4 --exec ./job.sh mq:/jobs\n");
}

/* What one parse of the command line (and config file) says. */
typedef struct serve_args {
    const char *set[32][2]; /* server settings: key, value */
    int nset;
    int raw;
    const char *exec;
    const char *urls[MAX_URLS];
    int nurls;
    char *config_text; /* owns the strings the config file contributed */
} serve_args;

enum {
    OPT_MAX_CONN = 256,
    OPT_MAX_FRAME,
    OPT_IDLE,
    OPT_READ,
    OPT_EXEC_T,
    OPT_EXEC_FR,
    OPT_SHUTDOWN,
    OPT_KILL,
    OPT_LOG,
    OPT_PID,
    OPT_STATUS,
};

static const struct option long_opts[] = {{"proto", required_argument, 0, 'p'},
                                          {"exec", required_argument, 0, 'e'},
                                          {"workers", required_argument, 0, 'w'},
                                          {"config", required_argument, 0, 'c'},
                                          {"max-conn", required_argument, 0, OPT_MAX_CONN},
                                          {"max-frame", required_argument, 0, OPT_MAX_FRAME},
                                          {"idle-timeout", required_argument, 0, OPT_IDLE},
                                          {"read-timeout", required_argument, 0, OPT_READ},
                                          {"exec-timeout", required_argument, 0, OPT_EXEC_T},
                                          {"exec-framing", required_argument, 0, OPT_EXEC_FR},
                                          {"shutdown-timeout", required_argument, 0, OPT_SHUTDOWN},
                                          {"kill-timeout", required_argument, 0, OPT_KILL},
                                          {"log", required_argument, 0, OPT_LOG},
                                          {"pid-file", required_argument, 0, OPT_PID},
                                          {"status", required_argument, 0, OPT_STATUS},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};

/* The server setting an option sets, or NULL. */
static const char *setting_of(int opt)
{
    switch (opt) {
    case 'w':
        return "workers";
    case OPT_MAX_CONN:
        return "max_conn";
    case OPT_MAX_FRAME:
        return "max_frame";
    case OPT_IDLE:
        return "idle_timeout";
    case OPT_READ:
        return "read_timeout";
    case OPT_EXEC_T:
        return "exec_timeout";
    case OPT_EXEC_FR:
        return "exec_framing";
    case OPT_SHUTDOWN:
        return "shutdown_timeout";
    case OPT_KILL:
        return "kill_timeout";
    case OPT_LOG:
        return "log";
    case OPT_PID:
        return "pid_file";
    case OPT_STATUS:
        return "status";
    default:
        return NULL;
    }
}

static int add_set(serve_args *a, const char *key, const char *value)
{
    if (a->nset == (int)(sizeof a->set / sizeof a->set[0]))
        return cli_usage_err("serve", "too many options");
    a->set[a->nset][0] = key;
    a->set[a->nset++][1] = value;
    return 0;
}

/* One option, from the command line or the config file. */
static int take_opt(serve_args *a, int opt, const char *val, const char **config)
{
    const char *key = setting_of(opt);
    if (key)
        return add_set(a, key, val);
    switch (opt) {
    case 'p':
        if (strcmp(val, "echo") != 0 && strcmp(val, "raw") != 0)
            return cli_usage_err("serve", "--proto %s: expected echo or raw", val);
        a->raw = strcmp(val, "raw") == 0;
        return 0;
    case 'e':
        a->exec = val;
        return 0;
    case 'c':
        if (config == NULL)
            return cli_usage_err("serve", "config: a config file cannot name another");
        *config = val;
        return 0;
    default:
        return CLI_USAGE;
    }
}

/* The config file: "NAME VALUE" per line, NAME a long option or "listen"; '#' comments. */
static int read_config(serve_args *a, const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "ipckit serve: --config %s: %s\n", path, strerror(errno));
        return CLI_FAIL;
    }
    size_t cap = 0;
    ssize_t n = getdelim(&a->config_text, &cap, '\0', f);
    fclose(f);
    if (n < 0)
        return cli_usage_err("serve", "--config %s: empty or unreadable", path);
    for (char *save = NULL, *line = strtok_r(a->config_text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line += strspn(line, " \t");
        if (*line == '#' || *line == '\0')
            continue;
        char *val = line + strcspn(line, " \t");
        if (*val)
            *val++ = '\0';
        val += strspn(val, " \t");
        for (char *e = val + strlen(val); e > val && (e[-1] == ' ' || e[-1] == '\t');)
            *--e = '\0';
        if (strcmp(line, "listen") == 0) {
            if (a->nurls == MAX_URLS)
                return cli_usage_err("serve", "at most %d addresses", MAX_URLS);
            a->urls[a->nurls++] = val;
            continue;
        }
        const struct option *o = long_opts;
        while (o->name && strcmp(o->name, line) != 0)
            o++;
        if (o->name == NULL || o->has_arg != required_argument)
            return cli_usage_err("serve", "--config %s: unknown option '%s'", path, line);
        int r = take_opt(a, o->val, val, NULL);
        if (r != 0)
            return r;
    }
    return 0;
}

/* Parses argv (and the config file it names) into a. 0, -1 after --help, or an exit code. */
static int parse_args(int argc, char **argv, serve_args *a)
{
    const char *config = NULL;
    int opt;
    optind = 1;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "p:e:w:c:h", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            serve_usage(stdout);
            return -1;
        }
        if (opt == '?') {
            serve_usage(stderr);
            return CLI_USAGE;
        }
        int r = take_opt(a, opt, optarg, &config);
        if (r != 0)
            return r;
    }
    for (; optind < argc; optind++) {
        if (a->nurls == MAX_URLS)
            return cli_usage_err("serve", "at most %d addresses", MAX_URLS);
        a->urls[a->nurls++] = argv[optind];
    }
    return config ? read_config(a, config) : 0;
}

/* Applies a parse to the server: settings, handler, listeners. 0 or an exit code. */
static int apply(ipk_server *s, const serve_args *a)
{
    for (int i = 0; i < a->nset; i++)
        if (ipk_server_set(s, a->set[i][0], a->set[i][1]) != 0)
            return cli_usage_err("serve", "%s", ipk_server_errmsg(s));
    if (a->exec)
        ipk_server_exec(s, a->exec);
    else
        ipk_server_handlers(s, NULL, NULL); /* echo */
    ipk_opts *o = ipk_opts_new();
    if (o == NULL || (a->raw && ipk_opts_set(o, "framing", "raw") != 0)) {
        ipk_opts_free(o);
        return cli_fail("serve", "options", -ENOMEM);
    }
    int rc = 0;
    for (int i = 0; i < a->nurls && rc == 0; i++) {
        /* --proto raw is framing=raw on byte streams; datagrams and queues have no framing. */
        char scheme[32];
        size_t n = strcspn(a->urls[i], ":");
        snprintf(scheme, sizeof scheme, "%.*s", (int)(n < 31 ? n : 31), a->urls[i]);
        int stream = (ipk_scheme_flags(scheme) & IPK_SCHEME_STREAM) != 0;
        int r = ipk_server_listen(s, a->urls[i], a->raw && stream ? o : NULL);
        if (r == IPK_ENOTSUP || r == IPK_EADDR || r == IPK_EOPTION)
            rc = cli_usage_err("serve", "%s", ipk_server_errmsg(s));
        else if (r != 0) {
            fprintf(stderr, "ipckit serve: %s\n", ipk_server_errmsg(s));
            rc = CLI_FAIL;
        }
    }
    ipk_opts_free(o);
    return rc;
}

/* Socket activation: the descriptors systemd (or systemd-socket-activate) passed, 3 onwards,
 * when LISTEN_PID names this process. */
static int adopt_listen_fds(ipk_server *s, const serve_args *a)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    long n;
    if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() ||
        cli_parse_long(fds, 1, 1000, &n) != 0)
        return cli_usage_err("serve", "expected a URL (or sockets passed through LISTEN_FDS)");
    ipk_opts *o = ipk_opts_new();
    if (o && a->raw)
        ipk_opts_set(o, "framing", "raw");
    for (int fd = 3; fd < 3 + (int)n; fd++)
        if (ipk_server_listen_fd(s, fd, o) != 0) {
            ipk_opts_free(o);
            fprintf(stderr, "ipckit serve: %s\n", ipk_server_errmsg(s));
            return CLI_FAIL;
        }
    ipk_opts_free(o);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return 0;
}

typedef struct reload_ctx {
    int argc;
    char **argv;
    serve_args *cur; /* the parse in force (the server keeps pointers into it) */
} reload_ctx;

/* HUP: the command line and the config file again. Sockets given before and again stay. */
static int reload(ipk_server *s, void *arg)
{
    reload_ctx *r = arg;
    serve_args *a = calloc(1, sizeof *a);
    if (a == NULL)
        return -ENOMEM;
    int rc = parse_args(r->argc, r->argv, a);
    if (rc == 0 && a->nurls == 0)
        rc = CLI_USAGE; /* socket activation: the adopted sockets cannot be named again */
    if (rc == 0)
        rc = apply(s, a);
    if (rc != 0) {
        free(a->config_text);
        free(a);
        return IPK_EOPTION;
    }
    free(r->cur->config_text);
    free(r->cur);
    r->cur = a;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    serve_args *a = calloc(1, sizeof *a);
    ipk_server *s = NULL;
    if (a == NULL || ipk_server_new(&s) != 0) {
        free(a);
        return cli_fail("serve", "start", -ENOMEM);
    }
    reload_ctx rctx = {argc, argv, a};
    int rc = parse_args(argc, argv, a);
    if (rc == 0) {
        ipk_server_set(s, "name", "ipckit serve");
        ipk_server_set(s, "max_frame", "1m");
        rc = a->nurls ? apply(s, a) : adopt_listen_fds(s, a);
        if (rc == 0 && a->nurls == 0)
            for (int i = 0; i < a->nset; i++)
                if (ipk_server_set(s, a->set[i][0], a->set[i][1]) != 0)
                    rc = cli_usage_err("serve", "%s", ipk_server_errmsg(s));
        if (rc == 0 && a->nurls == 0 && a->exec)
            ipk_server_exec(s, a->exec);
    }
    if (rc == 0) {
        ipk_server_on_reload(s, reload, &rctx);
        int r = ipk_server_run(s);
        if (r != 0) {
            fprintf(stderr, "ipckit serve: %s\n", ipk_server_errmsg(s));
            rc = CLI_FAIL;
        }
    }
    ipk_server_free(s);
    free(rctx.cur->config_text);
    free(rctx.cur);
    return rc < 0 ? CLI_OK : rc;
}
