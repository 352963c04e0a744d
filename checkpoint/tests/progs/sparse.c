/* A task with a large mapping it barely touches (a reserved heap, an arena, a sanitizer's
 * shadow): 512 MiB read-write, 16 scattered pages written, and a small part written again
 * and again until STOPFILE exists. At the end checks every written value and that its
 * resident memory stayed small: a checkpoint that carried the untouched pages as zeros
 * would make them resident after a restore.
 * Usage: sparse STOPFILE */
#include "common.h"
#include <sys/mman.h>

static long resident_kib(void) {
    char b[256]; size_t n;
    slurp_into("/proc/self/statm", b, sizeof b, &n);
    long size = 0, res = 0;
    sscanf(b, "%ld %ld", &size, &res);
    return res * 4;
}

int main(int argc, char **argv) {
    setup_stdout();
    if (argc != 2) { printf("usage: sparse STOPFILE\n"); return 2; }
    size_t n = (size_t)512 << 20, page = 4096;
    unsigned char *p = mmap(0, n, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    for (int i = 0; i < 16; i++) *(uint64_t *)(p + (size_t)i * (n / 16)) = 1000 + i;
    uint64_t v = 0;
    ready();
    while (access(argv[1], F_OK) != 0) {
        v++;
        for (int i = 0; i < 4; i++) *(uint64_t *)(p + page * (7 + i)) = v;
        usleep(2000);
    }
    for (int i = 1; i < 16; i++)
        CHECK(*(uint64_t *)(p + (size_t)i * (n / 16)) == (uint64_t)(1000 + i), "page %d lost", i);
    for (int i = 0; i < 4; i++)
        CHECK(*(uint64_t *)(p + page * (7 + i)) == v, "page %d: not the last value", 7 + i);
    long kib = resident_kib();
    printf("RESIDENT %ld KiB\n", kib);
    CHECK(kib < 32 * 1024, "%ld KiB resident: untouched pages were made resident", kib);
    finish();
    return failures != 0;
}
