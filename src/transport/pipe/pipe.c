/*
 * pipe.c - what the pipe transports (exec:, fifo:) share: the pipesz= option.
 */
#include "ipk.h"
#include "pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>

#define IPK__PIPESZ_DEFAULT ((size_t)1 << 20) /* pipesz= default: see ipk__pipe_size */

/*
 * pipesz=SIZE for the pipe transports (fifo:, exec:). A pipe holds 64 KiB by default, so a
 * frame of a 64 KiB message (65,540 bytes) never fits: the writer fills the pipe, sleeps, and
 * the reader takes it in two wake-ups. Default 1 MiB, capped by /proc/sys/fs/pipe-max-size
 * (the most an unprivileged process may ask for); a size the kernel refuses is only an error
 * when asked for explicitly (the default is best effort: a user past pipe-user-pages-soft
 * keeps 64 KiB pipes). 0 leaves the kernel's size. The kernel rounds up to a power of two pages.
 */
int ipk__pipe_size(ipk_chan *c, int fd)
{
    size_t want;
    int r = ipk__opt_size(c, "pipesz", IPK__PIPESZ_DEFAULT, &want);
    if (r != 0 || want == 0)
        return r;
    int asked = ipk__opt(c, "pipesz") != NULL;
    size_t most = IPK__PIPESZ_DEFAULT;
    FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
    if (f != NULL) {
        unsigned long v;
        if (fscanf(f, "%lu", &v) == 1)
            most = v;
        fclose(f);
    }
    if (want > INT_MAX || (asked && want > most && ipk__sys_fcntl(fd, F_SETPIPE_SZ, (int)want) < 0))
        return ipk__err(IPK_EOPTION,
                        "%s: pipesz=%zu: more than /proc/sys/fs/pipe-max-size (%zu) allows this "
                        "process",
                        c->name, want, most);
    if (!asked && want > most)
        want = most;
    if (ipk__sys_fcntl(fd, F_GETPIPE_SZ) >= (int)want)
        return 0;
    if (ipk__sys_fcntl(fd, F_SETPIPE_SZ, (int)want) < 0 && asked)
        return ipk__errsys(-errno, "%s: pipesz=%zu: F_SETPIPE_SZ", c->name, want);
    return 0;
}