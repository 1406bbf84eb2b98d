/*
 * fifo_writer.c - the guide's fifoWriter: 768,000 pseudo-random ints into a named pipe, in
 * 16-byte messages (four ints), sixteen messages per system call, with a short random pause.
 * Run: ./fifo_reader & ./fifo_writer
 */
#define _DEFAULT_SOURCE 1 /* usleep, sigaction and friends under -std=c11 */
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

#define MaxLoops     12000
#define ChunkSize    16
#define IntsPerChunk 4
#define MaxZs        250

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "fifo:./fifoChannel";
    ipk_chan *c;
    check(ipk_dial(&c, url, NULL), url);
    for (int i = 0; i < MaxLoops; i++) {
        int chunk[ChunkSize][IntsPerChunk];
        ipk_iov v[ChunkSize];
        for (int j = 0; j < ChunkSize; j++) {
            for (int k = 0; k < IntsPerChunk; k++)
                chunk[j][k] = rand();
            v[j] = (ipk_iov){chunk[j], sizeof chunk[j]};
        }
        for (size_t done = 0; done < ChunkSize;)
            done += (size_t)check(ipk_sendv(c, v + done, ChunkSize - done, -1), "write");
        usleep((useconds_t)(rand() % MaxZs) + 1);
    }
    check(ipk_close(c), "close");
    printf("%i ints sent to the pipe.\n", MaxLoops * ChunkSize * IntsPerChunk);
    return 0;
}
