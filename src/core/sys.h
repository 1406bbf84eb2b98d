/*
 * sys.h - the system calls ipckit makes, each behind a wrapper that fault injection can make
 * fail (sys.c). A wrapper has the signature and the result of the call it wraps (-1 and errno,
 * or the error number for the calls that return one), so routing a call through it is a
 * rename: open(...) becomes ipk__sys_open(...). Nothing else changes at the call site.
 *
 * Why a table of our own and not libfiu: libfiu's POSIX preload library intercepts every call
 * of the process, the test harness's and cmocka's included, and must be preloaded (it does not
 * mix with AddressSanitizer's interposition); its annotations would be the same wrappers. Ours
 * count and fail only ipckit's own calls, in order, so a test can fail "call number k" of a
 * sequence for every k, and they run in the plain, ASan and valgrind builds alike.
 *
 * Calls left out on purpose: close() and munmap() (their failure changes nothing: the
 * descriptor is released either way), the wake-ups and hints whose failure is harmless
 * (FUTEX_WAKE, membarrier, sched_getcpu, fcntl unlocks), the reads of /proc for messages, and
 * the calls an exec: child makes between spawn and exec (it shares our memory there).
 */
#ifndef IPK_SYS_H
#define IPK_SYS_H

#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

/* The kinds of call fault injection tells apart; ipk__sys_name() names each. */
#define IPK__SYSCALLS(X)                                                                           \
    X(READ, "read")                 /* read, readv (ipk__read*, ipk__sys_read) */                  \
    X(WRITEV, "write")              /* write, writev, send, sendmsg on streams (ipk__writev) */    \
    X(OPEN, "open")                 /* open */                                                     \
    X(STAT, "stat")                 /* stat, lstat, fstat */                                       \
    X(FCNTL, "fcntl")               /* fcntl: flags, pipe sizes, F_DUPFD */                        \
    X(LOCK, "fcntl lock")           /* fcntl F_OFD_SETLK, F_OFD_SETLKW (taking a lock) */          \
    X(MMAP, "mmap")                 /* mmap */                                                     \
    X(FTRUNCATE, "ftruncate")       /* ftruncate */                                                \
    X(FALLOCATE, "posix_fallocate") /* posix_fallocate */                                          \
    X(CHMOD, "chmod")               /* chmod, fchmod */                                            \
    X(UNLINK, "unlink")             /* unlink */                                                   \
    X(MKFIFO, "mkfifo")             /* mkfifo */                                                   \
    X(SOCKET, "socket")             /* socket */                                                   \
    X(BIND, "bind")                 /* bind */                                                     \
    X(LISTEN, "listen")             /* listen */                                                   \
    X(ACCEPT, "accept")             /* accept4 */                                                  \
    X(CONNECT, "connect")           /* connect */                                                  \
    X(SOCKOPT, "setsockopt")        /* setsockopt */                                               \
    X(SOCKINFO, "getsockopt")       /* getsockopt, getsockname, getpeername */                     \
    X(SEND, "sendto")               /* send, sendto, sendmmsg on datagram sockets */               \
    X(RECV, "recvmsg")              /* recvmsg, recvfrom */                                        \
    X(PREAD, "pread")               /* pread */                                                    \
    X(PWRITE, "pwritev")            /* pwritev */                                                  \
    X(FSYNC, "fdatasync")           /* fdatasync */                                                \
    X(PIPE, "pipe2")                /* pipe2 */                                                    \
    X(SPAWN, "posix_spawn")         /* posix_spawn */                                              \
    X(WAIT, "waitpid")              /* waitpid, waitid */                                          \
    X(KILL, "kill")                 /* kill */                                                     \
    X(MQ_OPEN, "mq_open")           /* mq_open */                                                  \
    X(MQ_SEND, "mq_send")           /* mq_send, mq_timedsend */                                    \
    X(MQ_RECV, "mq_receive")        /* mq_receive, mq_timedreceive */                              \
    X(MQ_UNLINK, "mq_unlink")       /* mq_unlink */                                                \
    X(FTOK, "ftok")                 /* ftok */                                                     \
    X(MSGGET, "msgget")             /* msgget */                                                   \
    X(MSGCTL, "msgctl")             /* msgctl */                                                   \
    X(MSGSND, "msgsnd")             /* msgsnd */                                                   \
    X(MSGRCV, "msgrcv")             /* msgrcv */                                                   \
    X(SHM_OPEN, "shm_open")         /* shm_open */                                                 \
    X(SHM_UNLINK, "shm_unlink")     /* shm_unlink */                                               \
    X(FUTEX, "futex_wait")          /* FUTEX_WAIT_BITSET */                                        \
    X(INOTIFY, "inotify_init1")     /* inotify_init1 */                                            \
    X(WATCH, "inotify_add_watch")   /* inotify_add_watch */                                        \
    X(SIGNALFD, "signalfd")         /* signalfd */                                                 \
    X(SIGQUEUE, "rt_sigqueueinfo")  /* rt_sigqueueinfo */                                          \
    X(POLL, "ppoll")                /* ppoll (ipk__wait_fds) */

#define IPK__SYS_ENUM(name, text) IPK__SYS_##name,
enum ipk__syscall { IPK__SYSCALLS(IPK__SYS_ENUM) IPK__SYS_COUNT };
#undef IPK__SYS_ENUM

/* ---- fault injection (tests only; not thread-safe: one thread arms and calls) ---- */

/* The nth call (1-based) of kind `call` fails with err. */
void ipk__fault_set(enum ipk__syscall call, int nth, int err);
/* The nth wrapped call of any kind fails with err; nth 0 only counts. Resets the count. */
void ipk__fault_any(int nth, int err);
/* Disarms everything and stops counting. */
void ipk__fault_clear(void);
/* Wrapped calls made since ipk__fault_any(), the kind of the ith (1-based; the first
 * IPK__FAULT_LOG are kept, later ones read as IPK__SYS_COUNT), and whether the fault fired. */
#define IPK__FAULT_LOG 4096
int ipk__fault_calls(void);
enum ipk__syscall ipk__fault_kind(int i);
int ipk__fault_fired(void);
const char *ipk__sys_name(enum ipk__syscall call);

/* ---- the wrappers (same signatures and results as the calls they wrap) ---- */

struct mmsghdr;
struct msqid_ds;
ssize_t ipk__sys_read(int fd, void *buf, size_t n);
int ipk__sys_open(const char *path, int flags, ...);
int ipk__sys_stat(const char *path, struct stat *st);
int ipk__sys_lstat(const char *path, struct stat *st);
int ipk__sys_fstat(int fd, struct stat *st);
int ipk__sys_fcntl(int fd, int cmd, ...);
void *ipk__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int ipk__sys_ftruncate(int fd, off_t len);
int ipk__sys_posix_fallocate(int fd, off_t off, off_t len);
int ipk__sys_chmod(const char *path, mode_t mode);
int ipk__sys_fchmod(int fd, mode_t mode);
int ipk__sys_unlink(const char *path);
int ipk__sys_mkfifo(const char *path, mode_t mode);
int ipk__sys_socket(int domain, int type, int proto);
int ipk__sys_bind(int fd, const struct sockaddr *sa, socklen_t len);
int ipk__sys_listen(int fd, int backlog);
int ipk__sys_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int ipk__sys_connect(int fd, const struct sockaddr *sa, socklen_t len);
int ipk__sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len);
int ipk__sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len);
int ipk__sys_getsockname(int fd, struct sockaddr *sa, socklen_t *len);
int ipk__sys_getpeername(int fd, struct sockaddr *sa, socklen_t *len);
ssize_t ipk__sys_send(int fd, const void *buf, size_t n, int flags);
ssize_t ipk__sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                        socklen_t len);
int ipk__sys_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags);
ssize_t ipk__sys_recvmsg(int fd, struct msghdr *mh, int flags);
ssize_t ipk__sys_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
                          socklen_t *len);
ssize_t ipk__sys_pread(int fd, void *buf, size_t n, off_t off);
ssize_t ipk__sys_pwritev(int fd, const struct iovec *iov, int n, off_t off);
int ipk__sys_fdatasync(int fd);
int ipk__sys_pipe2(int fds[2], int flags);
int ipk__sys_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *at, char *const argv[], char *const envp[]);
pid_t ipk__sys_waitpid(pid_t pid, int *status, int options);
int ipk__sys_waitid(idtype_t type, id_t id, siginfo_t *si, int options);
int ipk__sys_kill(pid_t pid, int sig);
mqd_t ipk__sys_mq_open(const char *name, int flags, ...);
int ipk__sys_mq_send(mqd_t q, const char *msg, size_t len, unsigned prio);
int ipk__sys_mq_timedsend(mqd_t q, const char *msg, size_t len, unsigned prio,
                          const struct timespec *ts);
ssize_t ipk__sys_mq_receive(mqd_t q, char *buf, size_t len, unsigned *prio);
ssize_t ipk__sys_mq_timedreceive(mqd_t q, char *buf, size_t len, unsigned *prio,
                                 const struct timespec *ts);
int ipk__sys_mq_unlink(const char *name);
key_t ipk__sys_ftok(const char *path, int proj);
int ipk__sys_msgget(key_t key, int flags);
int ipk__sys_msgctl(int id, int cmd, struct msqid_ds *ds);
int ipk__sys_msgsnd(int id, const void *msg, size_t len, int flags);
ssize_t ipk__sys_msgrcv(int id, void *msg, size_t len, long type, int flags);
int ipk__sys_shm_open(const char *name, int flags, mode_t mode);
int ipk__sys_shm_unlink(const char *name);
/* FUTEX_WAIT_BITSET on a shared word until the absolute CLOCK_MONOTONIC time ts (NULL: none). */
long ipk__sys_futex_wait(void *word, uint32_t val, const struct timespec *ts);
int ipk__sys_inotify_init1(int flags);
int ipk__sys_inotify_add_watch(int fd, const char *path, uint32_t mask);
int ipk__sys_signalfd(int fd, const sigset_t *set, int flags);
int ipk__sys_rt_sigqueueinfo(pid_t pid, int sig, siginfo_t *si);
int ipk__sys_ppoll(struct pollfd *p, nfds_t n, const struct timespec *ts, const sigset_t *mask);

#endif
