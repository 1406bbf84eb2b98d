/*
 * test_soak.c - the short soak-and-kill run (tools/soak/soak.h): per transport, 20,000 numbered
 * and checksummed messages (2,000 under IPKT_SLOW=1) while producers and consumers are killed
 * with SIGKILL (up to three times) where the transport promises to survive it, and a storm of
 * SIGUSR2, caught without SA_RESTART, interrupts every call. Nothing committed may be lost beyond
 * what the transport's rules excuse (soak.c says which), and nothing duplicated, reordered or
 * corrupted; no error may come that the rules do not explain. The long run (1,000,000 per
 * transport) is tools/soak's ipckit-soak; docs/RELIABILITY.md has its table.
 */
#include "harness.h"
#include "soak.h"

#include <string.h>

static void soak(const char *transport)
{
    soak_cfg cfg = {.transport = transport,
                    .messages = ipkt_slow() ? 2000 : 20000,
                    .kills = 3,
                    .storm = 1,
                    .pace_us = 1000,
                    .dir = ipkt_dir(),
                    .self = IPK_SOAK_BIN};
    soak_result r;
    assert_int_equal(soak_run(&cfg, &r), 0);
    if (!soak_clean(&r))
        fprintf(stderr,
                "%s: %llu committed, %llu received, %llu lost, %llu duplicated, %llu reordered, "
                "%llu corrupt, %llu unexpected; first: %s\n",
                transport, (unsigned long long)r.committed, (unsigned long long)r.received,
                (unsigned long long)r.lost, (unsigned long long)r.duplicated,
                (unsigned long long)r.reordered, (unsigned long long)r.corrupt,
                (unsigned long long)r.unexpected, r.first_error);
    assert_true(soak_clean(&r));
    /* The run happened: most messages went through, and there were kills (a kill whose moment
     * comes after the producers finished is not made: they may outrun their consumer). */
    assert_true(r.committed > cfg.messages / 2);
    assert_true(r.kills_prod + r.kills_cons >= 1 && r.kills_prod + r.kills_cons <= 3);
}

#define T(fn, name)                                                                                \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        soak(name);                                                                                \
    }
T(t_soak_mq, "mq")
T(t_soak_sysv, "sysv")
T(t_soak_shm, "shm")
T(t_soak_shm_multi, "shm-multi")
T(t_soak_file, "file")
T(t_soak_fifo, "fifo")
T(t_soak_unix, "unix")
T(t_soak_unixpacket, "unixpacket")
T(t_soak_unixgram, "unixgram")
T(t_soak_tcp, "tcp")
T(t_soak_udp, "udp")
T(t_soak_exec, "exec")
T(t_soak_signal, "signal")

IPKT_MAIN(cmocka_unit_test(t_soak_mq), cmocka_unit_test(t_soak_sysv), cmocka_unit_test(t_soak_shm),
          cmocka_unit_test(t_soak_shm_multi), cmocka_unit_test(t_soak_file),
          cmocka_unit_test(t_soak_fifo), cmocka_unit_test(t_soak_unix),
          cmocka_unit_test(t_soak_unixpacket), cmocka_unit_test(t_soak_unixgram),
          cmocka_unit_test(t_soak_tcp), cmocka_unit_test(t_soak_udp), cmocka_unit_test(t_soak_exec),
          cmocka_unit_test(t_soak_signal))
