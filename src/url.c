/*
 * url.c - address parsing for every scheme, whether or not this build implements its transport,
 * so that a malformed address always gets the same precise IPK_EADDR message.
 *
 *   scheme:body?key=value&key=value
 *
 * tcp and udp write the body as //host:port. The query starts at the first '?', except for
 * exec:, whose shell command may itself contain '?': there the query starts at the last '?' and
 * only if everything after it reads as key=value pairs.
 */
#include "ipk.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ipk__scheme_names[IPK__S_COUNT] = {
    [IPK__S_FILE] = "file",
    [IPK__S_SHM] = "shm",
    [IPK__S_EXEC] = "exec",
    [IPK__S_FIFO] = "fifo",
    [IPK__S_MQ] = "mq",
    [IPK__S_SYSV] = "sysv",
    [IPK__S_UNIX] = "unix",
    [IPK__S_UNIXGRAM] = "unixgram",
    [IPK__S_UNIXPACKET] = "unixpacket",
    [IPK__S_TCP] = "tcp",
    [IPK__S_UDP] = "udp",
    [IPK__S_SIGNAL] = "signal",
};

int ipk__parse_long(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int ipk__parse_size(const char *s, size_t *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -ERANGE;
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        return -EINVAL;
    }
    if (*end != '\0')
        return -EINVAL;
    if (shift && v > (~0ULL >> shift))
        return -ERANGE;
    v <<= shift;
    if (v > SIZE_MAX)
        return -ERANGE;
    *out = (size_t)v;
    return 0;
}

int ipk__parse_signal(const char *s, int *signo)
{
    static const struct {
        const char *name;
        int sig;
    } named[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
        {"USR2", SIGUSR2}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
        {"CONT", SIGCONT}, {"WINCH", SIGWINCH},   {"PIPE", SIGPIPE}, {"URG", SIGURG},
        {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"IO", SIGIO},
        {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
        {"SYS", SIGSYS},   {"TRAP", SIGTRAP},
    };
    if (s == NULL || *s == '\0')
        return ipk__err(IPK_EOPTION, "empty signal name");
    const char *p = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    int sig = -1;
    if (isdigit((unsigned char)*p)) {
        long v;
        if (ipk__parse_long(p, 1, 64, &v) != 0)
            return ipk__err(IPK_EOPTION, "signal '%s': not a signal number", s);
        sig = (int)v;
    } else if (strncmp(p, "RTMIN", 5) == 0 || strncmp(p, "RTMAX", 5) == 0) {
        long off = 0;
        const char *q = p + 5;
        if (*q != '\0') {
            if ((p[3] == 'I' && *q != '+') || (p[3] == 'A' && *q != '-') ||
                ipk__parse_long(q + 1, 0, 64, &off) != 0)
                return ipk__err(IPK_EOPTION, "signal '%s': write RTMIN+n or RTMAX-n", s);
        }
        sig = p[3] == 'I' ? SIGRTMIN + (int)off : SIGRTMAX - (int)off;
    } else {
        for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
            if (strcmp(p, named[i].name) == 0)
                sig = named[i].sig;
        if (sig < 0)
            return ipk__err(IPK_EOPTION, "signal '%s': unknown signal name", s);
    }
    if (sig == SIGKILL || sig == SIGSTOP)
        return ipk__err(IPK_EOPTION, "signal '%s': SIGKILL and SIGSTOP cannot be caught", s);
    if (sig > SIGRTMAX)
        return ipk__err(IPK_EOPTION, "signal '%s': above SIGRTMAX (%d)", s, SIGRTMAX);
    if (sig >= 32 && sig < SIGRTMIN)
        return ipk__err(IPK_EOPTION,
                        "signal '%s': real-time signals below SIGRTMIN (%d) are reserved by the C "
                        "library",
                        s, SIGRTMIN);
    *signo = sig;
    return 0;
}

static int ipk__valid_key(const char *k, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '_'))
            return 0;
    return 1;
}

/* Whether q (after '?') is key[=value](&key[=value])*. */
static int ipk__looks_like_query(const char *q)
{
    if (*q == '\0')
        return 0;
    for (;;) {
        size_t n = strcspn(q, "=&");
        if (!ipk__valid_key(q, n))
            return 0;
        q += n;
        if (*q == '=')
            q += strcspn(q, "&");
        if (*q == '\0')
            return 1;
        q++; /* '&' */
    }
}

static int ipk__parse_query(ipk__addr *a, const char *url, const char *q)
{
    if (*q == '\0')
        return ipk__err(IPK_EADDR, "%s: empty query after '?'", url);
    while (*q) {
        size_t n = strcspn(q, "&");
        size_t kn = strcspn(q, "=&");
        char key[64], *val;
        if (!ipk__valid_key(q, kn) || kn >= sizeof key)
            return ipk__err(IPK_EADDR, "%s: bad option name '%.*s' (lower-case letters, digits, _)",
                            url, (int)kn, q);
        memcpy(key, q, kn);
        key[kn] = '\0';
        if (kn < n) {
            val = strndup(q + kn + 1, n - kn - 1);
        } else {
            val = strdup("1");
        }
        if (val == NULL)
            return -ENOMEM;
        for (ipk__kv *kv = a->query; kv; kv = kv->next)
            if (strcmp(kv->key, key) == 0) {
                free(val);
                return ipk__err(IPK_EADDR, "%s: option '%s' given twice", url, key);
            }
        int r = ipk__kv_set(&a->query, key, val);
        free(val);
        if (r < 0)
            return r;
        q += n;
        if (*q == '&') {
            q++;
            if (*q == '\0')
                return ipk__err(IPK_EADDR, "%s: trailing '&'", url);
        }
    }
    return 0;
}

static int ipk__parse_inet(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (strncmp(b, "//", 2) != 0)
        return ipk__err(IPK_EADDR, "%s: write %s://HOST:PORT", url, a->scheme_name);
    b += 2;
    const char *port;
    if (*b == '[') {
        const char *close = strchr(b, ']');
        if (close == NULL)
            return ipk__err(IPK_EADDR, "%s: '[' without ']' around the IPv6 address", url);
        size_t n = (size_t)(close - b - 1);
        if (n == 0 || n >= sizeof a->u.inet.host)
            return ipk__err(IPK_EADDR, "%s: empty or overlong IPv6 address", url);
        memcpy(a->u.inet.host, b + 1, n);
        a->u.inet.host[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (!(isxdigit((unsigned char)a->u.inet.host[i]) || a->u.inet.host[i] == ':' ||
                  a->u.inet.host[i] == '.' || a->u.inet.host[i] == '%'))
                return ipk__err(IPK_EADDR, "%s: '%s' is not an IPv6 address", url, a->u.inet.host);
        if (close[1] != ':')
            return ipk__err(IPK_EADDR, "%s: missing ':PORT' after ']'", url);
        port = close + 2;
    } else {
        const char *colon = strrchr(b, ':');
        if (colon == NULL)
            return ipk__err(IPK_EADDR, "%s: missing ':PORT'", url);
        size_t n = (size_t)(colon - b);
        if (memchr(b, ':', n) != NULL)
            return ipk__err(IPK_EADDR, "%s: IPv6 addresses go in brackets: %s://[::1]:PORT", url,
                            a->scheme_name);
        if (n >= sizeof a->u.inet.host)
            return ipk__err(IPK_EADDR, "%s: host name longer than 255 bytes", url);
        memcpy(a->u.inet.host, b, n);
        a->u.inet.host[n] = '\0';
        if (strcmp(a->u.inet.host, "*") == 0) {
            a->u.inet.any = 1;
            a->u.inet.host[0] = '\0';
        } else {
            for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)a->u.inet.host[i];
                if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_'))
                    return ipk__err(IPK_EADDR, "%s: bad character '%c' in host name", url, ch);
            }
        }
        port = colon + 1;
    }
    long p;
    if (*port == '\0')
        return ipk__err(IPK_EADDR, "%s: missing port number", url);
    for (const char *q = port; *q; q++)
        if (!isdigit((unsigned char)*q))
            return ipk__err(IPK_EADDR, "%s: port '%s' is not a number", url, port);
    if (ipk__parse_long(port, 0, 65535, &p) != 0 || strlen(port) > 5)
        return ipk__err(IPK_EADDR, "%s: port %s out of range 0-65535", url, port);
    a->u.inet.port = (uint16_t)p;
    return 0;
}

static int ipk__parse_unix(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (*b == '\0')
        return ipk__err(IPK_EADDR, "%s: missing socket path (or @name for the abstract namespace)",
                        url);
    if (*b == '@') {
        size_t n = strlen(b + 1);
        if (n == 0)
            return ipk__err(IPK_EADDR, "%s: empty abstract socket name", url);
        if (n > sizeof a->u.un.path - 1)
            return ipk__err(IPK_EADDR, "%s: abstract name is %zu bytes; the limit is %zu", url, n,
                            sizeof a->u.un.path - 1);
        a->u.un.abstract = 1;
        memcpy(a->u.un.path, b + 1, n);
        a->u.un.len = n;
        return 0;
    }
    size_t n = strlen(b);
    if (n > sizeof a->u.un.path - 1)
        return ipk__err(IPK_EADDR, "%s: socket path is %zu bytes; sun_path holds %zu", url, n,
                        sizeof a->u.un.path - 1);
    memcpy(a->u.un.path, b, n + 1);
    a->u.un.len = n;
    return 0;
}

static int ipk__parse_posix_name(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    size_t n = strlen(b);
    if (b[0] != '/' || n < 2)
        return ipk__err(IPK_EADDR, "%s: the name must be /NAME (a slash, then at least one byte)",
                        url);
    if (strchr(b + 1, '/') != NULL)
        return ipk__err(IPK_EADDR, "%s: no '/' allowed after the leading one", url);
    if (n > NAME_MAX)
        return ipk__err(IPK_EADDR, "%s: name is %zu bytes; NAME_MAX is %d", url, n, NAME_MAX);
    if (strcmp(b, "/.") == 0 || strcmp(b, "/..") == 0)
        return ipk__err(IPK_EADDR, "%s: '.' and '..' are not names", url);
    memcpy(a->u.posix.name, b, n + 1);
    return 0;
}

static int ipk__parse_path(ipk__addr *a, const char *url)
{
    size_t n = strlen(a->body);
    if (n == 0)
        return ipk__err(IPK_EADDR, "%s: missing path", url);
    if (n >= PATH_MAX)
        return ipk__err(IPK_EADDR, "%s: path is %zu bytes; PATH_MAX is %d", url, n, PATH_MAX);
    return 0;
}

static int ipk__parse_sysv(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (*b == '\0')
        return ipk__err(IPK_EADDR, "%s: missing key or path (sysv:0x7b0001 or sysv:PATH)", url);
    if (isdigit((unsigned char)*b) || (*b == '-' && isdigit((unsigned char)b[1]))) {
        long k;
        if (ipk__parse_long(b, INT_MIN, UINT_MAX, &k) != 0)
            return ipk__err(IPK_EADDR,
                            "%s: '%s' is not a key (a number; write ./%s for a file of that name)",
                            url, b, b);
        if (k == 0)
            return ipk__err(IPK_EADDR, "%s: key 0 is IPC_PRIVATE and cannot be shared by name",
                            url);
        a->u.sysv.literal = 1;
        a->u.sysv.key = k;
        return 0;
    }
    return ipk__parse_path(a, url);
}

static int ipk__parse_sig(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (strcmp(b, "self") == 0) {
        a->u.sig.pid = 0;
        return 0;
    }
    long pid;
    for (const char *q = b; *q; q++)
        if (!isdigit((unsigned char)*q))
            return ipk__err(IPK_EADDR, "%s: write signal:PID or signal:self", url);
    if (ipk__parse_long(b, 1, 4194304, &pid) != 0)
        return ipk__err(IPK_EADDR, "%s: pid '%s' out of range 1-4194304", url, b);
    a->u.sig.pid = (pid_t)pid;
    return 0;
}

static int ipk__parse_exec(ipk__addr *a, const char *url)
{
    for (const char *q = a->body; *q; q++)
        if (!isspace((unsigned char)*q))
            return 0;
    return ipk__err(IPK_EADDR, "%s: missing command", url);
}

void ipk__addr_free(ipk__addr *a)
{
    free(a->body);
    ipk__kv_free(a->query);
    memset(a, 0, sizeof *a);
}

int ipk__addr_parse(ipk__addr *a, const char *url)
{
    memset(a, 0, sizeof *a);
    if (url == NULL)
        return ipk__err(-EINVAL, "address is NULL");
    const char *colon = strchr(url, ':');
    if (colon == NULL)
        return ipk__err(IPK_EADDR, "%s: missing scheme (e.g. unix:/path, tcp://127.0.0.1:9000)",
                        url);
    size_t sn = (size_t)(colon - url);
    int s = -1;
    for (int i = 0; i < IPK__S_COUNT; i++)
        if (strlen(ipk__scheme_names[i]) == sn && strncmp(url, ipk__scheme_names[i], sn) == 0)
            s = i;
    if (s < 0)
        return ipk__err(IPK_EADDR,
                        "%s: unknown scheme '%.*s' (file shm exec fifo mq sysv unix unixgram "
                        "unixpacket tcp udp signal)",
                        url, (int)sn, url);
    a->scheme = (enum ipk__scheme)s;
    a->scheme_name = ipk__scheme_names[s];
    const char *body = colon + 1;
    const char *q = NULL;
    if (a->scheme == IPK__S_EXEC) {
        const char *last = strrchr(body, '?');
        if (last && ipk__looks_like_query(last + 1))
            q = last;
    } else {
        q = strchr(body, '?');
    }
    size_t bn = q ? (size_t)(q - body) : strlen(body);
    a->body = strndup(body, bn);
    if (a->body == NULL)
        return -ENOMEM;
    int r = 0;
    if (q)
        r = ipk__parse_query(a, url, q + 1);
    if (r == 0) {
        switch (a->scheme) {
        case IPK__S_TCP:
        case IPK__S_UDP:
            r = ipk__parse_inet(a, url);
            break;
        case IPK__S_UNIX:
        case IPK__S_UNIXGRAM:
        case IPK__S_UNIXPACKET:
            r = ipk__parse_unix(a, url);
            break;
        case IPK__S_MQ:
        case IPK__S_SHM:
            r = ipk__parse_posix_name(a, url);
            break;
        case IPK__S_SYSV:
            r = ipk__parse_sysv(a, url);
            break;
        case IPK__S_SIGNAL:
            r = ipk__parse_sig(a, url);
            break;
        case IPK__S_EXEC:
            r = ipk__parse_exec(a, url);
            break;
        case IPK__S_FILE:
        case IPK__S_FIFO:
            r = ipk__parse_path(a, url);
            break;
        case IPK__S_COUNT:
            break;
        }
    }
    if (r != 0)
        ipk__addr_free(a);
    return r;
}
