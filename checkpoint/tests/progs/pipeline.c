/* producer | consumer: the producer writes N numbered lines into a pipe (blocking once it is
 * full); the consumer waits for "go" on stdin before reading, so the pipe holds bytes at a
 * checkpoint. Prints the count and an FNV hash of everything read. */
#include "common.h"
#include <sys/ioctl.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int p[2];
    if (pipe(p)) return 2;
    pid_t prod = fork();
    if (prod == 0) {
        close(p[0]);
        FILE *w = fdopen(p[1], "w");
        for (long i = 0; i < n; i++) fprintf(w, "line %ld\n", i);
        fclose(w);
        _exit(0);
    }
    close(p[1]);
    char buf[65536];
    /* wait until the pipe is full (the producer blocks) */
    for (int i = 0; i < 500; i++) {
        int avail = 0;
        ioctl(p[0], FIONREAD, &avail);
        if (avail >= 65536) break;
        usleep(10000);
    }
    printf("READY\n"); fflush(stdout);
    if (read(0, buf, 16) <= 0) return 3;
    uint64_t h = 1469598103934665603ULL; long bytes = 0; ssize_t r;
    while ((r = read(p[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) { h ^= (unsigned char)buf[i]; h *= 1099511628211ULL; }
        bytes += r;
    }
    int st = 0;
    waitpid(prod, &st, 0);
    printf("RESULT bytes=%ld fnv=%016llx producer=%d\n", bytes, (unsigned long long)h,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    fflush(stdout);
    return 0;
}
