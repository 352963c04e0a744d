/* Replaces one mapping at the same address again and again (munmap, then mmap MAP_FIXED),
 * filling each new one with a fresh value; at the end checks that it holds the last value.
 * A dirty-page tracker that trusted the address would miss the new mapping's pages.
 * Usage: remapper ROUNDS STOPFILE (goes on past ROUNDS until STOPFILE exists). */
#include "common.h"
#include <sys/mman.h>

int main(int argc, char **argv) {
    setup_stdout();
    if (argc != 3) { printf("usage: remapper ROUNDS STOPFILE\n"); return 2; }
    long rounds = atol(argv[1]);
    size_t n = 16 * 4096;
    int rw = PROT_READ | PROT_WRITE, anon = MAP_PRIVATE | MAP_ANONYMOUS;
    unsigned char *p = mmap(0, n, rw, anon, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    uint64_t v = 0;
    ready();
    for (long r = 0; r < rounds || access(argv[2], F_OK) != 0; r++) {
        munmap(p, n);
        CHECK(mmap(p, n, rw, anon | MAP_FIXED, -1, 0) == p, "mmap again");
        v++;
        for (size_t i = 0; i < n; i += 4096) *(uint64_t *)(p + i) = v;
        usleep(2000);
    }
    size_t bad = 0;
    for (size_t i = 0; i < n; i += 4096) bad += *(uint64_t *)(p + i) != v;
    CHECK(bad == 0, "%zu of 16 pages do not hold the last value %llu", bad, (unsigned long long)v);
    finish();
    return failures != 0;
}
