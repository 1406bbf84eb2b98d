/*
 * test_inet_perm.c - permission denied on tcp: and udp:. The one permission an IP socket has is
 * the privileged port range, which varies by host (net.ipv4.ip_unprivileged_port_start), so the
 * test makes its own: a child enters a fresh network namespace, sets the boundary to 1024 there,
 * brings up loopback, becomes nobody, and listens on port 80.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <unistd.h>

/* Exit codes of the child: 0 as expected, 10+ a setup step failed, 1 a wrong result. */
static int listen_low_port_as_nobody(void *arg)
{
    const char *url = arg;
    if (unshare(CLONE_NEWNET) != 0)
        return 10;
    int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "1024", 4) != 4)
        return 11;
    close(fd);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        return 12;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        return 13;
    close(s);
    /* Root may bind below 1024 here: the boundary is really in force only for nobody. */
    ipk_chan *c;
    if (ipk_listen(&c, url, NULL) != 0)
        return 14;
    ipk_close(c);
    if (ipkt_become_nobody() != 0)
        return 15;
    int r = ipk_listen(&c, url, NULL);
    if (r != -EACCES) {
        fprintf(stderr, "%s as nobody: %d (%s)\n", url, r, ipk_errmsg());
        return 1;
    }
    if (strstr(ipk_errmsg(), "127.0.0.1:80") == NULL) {
        fprintf(stderr, "message lacks the address: %s\n", ipk_errmsg());
        return 1;
    }
    return 0;
}

static void t_tcp_privileged_port(void **state)
{
    (void)state;
    assert_int_equal(ipkt_wait(ipkt_spawn(listen_low_port_as_nobody, "tcp://127.0.0.1:80")), 0);
}

static void t_udp_privileged_port(void **state)
{
    (void)state;
    assert_int_equal(ipkt_wait(ipkt_spawn(listen_low_port_as_nobody, "udp://127.0.0.1:80")), 0);
}

IPKT_MAIN(cmocka_unit_test(t_tcp_privileged_port), cmocka_unit_test(t_udp_privileged_port))
