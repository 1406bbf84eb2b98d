/*
 * replay.c - runs a fuzz target over every file of its corpus directory, so the corpus replays
 * as an ordinary test in every build (with or without libFuzzer).
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int main(int argc, char **argv)
{
    /* Without an argument, the target's own corpus (so that a runner that knows only the
     * program, such as build.sh's valgrind pass, replays it too). */
    const char *dir = argc == 2 ? argv[1] : IPK_FUZZ_CORPUS;
    if (argc > 2) {
        fprintf(stderr, "usage: %s [CORPUS_DIR]\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return 2;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        static unsigned char buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        n++;
    }
    closedir(d);
    printf("%s: %d inputs replayed\n", dir, n);
    return n > 0 ? 0 : 1;
}
