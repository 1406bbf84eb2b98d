/*
 * peer_memwriter.c - a program written the guide's way (memwriter/memreader), with no ipckit:
 * only shm_open, ftruncate, mmap, sem_open, sem_post and sem_wait. test_shm.c runs it against
 * ipckit's shm: mode=segment in both directions.
 *
 *   peer_memwriter write /SEGMENT /SEM TEXT   create the segment (512 bytes, as the guide),
 *                                             copy TEXT with its NUL, post the semaphore
 *   peer_memwriter read /SEGMENT /SEM          open the segment, wait on the semaphore, print
 *                                             the text on stdout
 * The test removes the objects afterwards (the guide's writer unlinks them after a sleep).
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ByteSize    512
#define AccessPerms 0644

static void report_and_exit(const char *msg)
{
    perror(msg);
    exit(2);
}

static int writer(const char *seg, const char *semname, const char *text)
{
    int fd = shm_open(seg, O_RDWR | O_CREAT, AccessPerms);
    if (fd < 0)
        report_and_exit("Can't open shared mem segment...");
    if (ftruncate(fd, ByteSize) != 0)
        report_and_exit("ftruncate");
    char *memptr = mmap(NULL, ByteSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memptr == MAP_FAILED)
        report_and_exit("Can't get segment...");
    sem_t *semptr = sem_open(semname, O_CREAT, AccessPerms, 0);
    if (semptr == SEM_FAILED)
        report_and_exit("sem_open");
    strncpy(memptr, text, ByteSize - 1);
    if (sem_post(semptr) < 0)
        report_and_exit("sem_post");
    munmap(memptr, ByteSize);
    close(fd);
    sem_close(semptr);
    return 0;
}

static int reader(const char *seg, const char *semname)
{
    int fd = shm_open(seg, O_RDWR, AccessPerms);
    if (fd < 0)
        report_and_exit("Can't get file descriptor...");
    struct stat st;
    if (fstat(fd, &st) != 0)
        report_and_exit("fstat");
    char *memptr = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memptr == MAP_FAILED)
        report_and_exit("Can't access segment...");
    sem_t *semptr = sem_open(semname, O_CREAT, AccessPerms, 0);
    if (semptr == SEM_FAILED)
        report_and_exit("sem_open");
    if (sem_wait(semptr) != 0)
        report_and_exit("sem_wait");
    size_t n = strnlen(memptr, (size_t)st.st_size);
    if (write(STDOUT_FILENO, memptr, n) != (ssize_t)n)
        report_and_exit("write");
    munmap(memptr, (size_t)st.st_size);
    close(fd);
    sem_close(semptr);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "write") == 0)
        return writer(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "read") == 0)
        return reader(argv[2], argv[3]);
    fprintf(stderr, "usage: %s write /SEGMENT /SEM TEXT | read /SEGMENT /SEM\n", argv[0]);
    return 2;
}
