/* Dirties private memory at a steady rate, one tick a millisecond, for a given number of
 * ticks; then checks every page against what its writes must have left and prints the
 * longest gap between two ticks (wall clock: the stop a migration cost it); every gap over
 * 3 ms is printed as it happens ("STALL <ms> at <unix ms>"), so a migrator can tell which
 * of its stops the task saw.
 * With STOPFILE it goes on past TICKS until that file exists (its final state is checked
 * against the writes it made, however many).
 * Usage: dirtier MIB RATE_MIB_PER_S TICKS [STOPFILE] */
#include "common.h"
#include <sys/mman.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static unsigned char pattern(size_t i) { return (unsigned char)(i / 64 * 7 + 3); }

int main(int argc, char **argv) {
    setup_stdout();
    if (argc != 4 && argc != 5) { printf("usage: dirtier MIB RATE TICKS [STOPFILE]\n"); return 2; }
    const char *stop = argc == 5 ? argv[4] : 0;
    size_t n = (size_t)atol(argv[1]) << 20, npages = n / 4096;
    double per_tick = atof(argv[2]) * 256.0 / 1000.0;
    long ticks = atol(argv[3]);
    unsigned char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    for (size_t i = 0; i < n; i += 64) p[i] = pattern(i);
    uint64_t written = 0;
    double acc = 0, maxgap = 0, gap_at = 0, last = now_ms();
    ready();
    for (long t = 0; t < ticks || (stop && access(stop, F_OK) != 0); t++) {
        acc += per_tick;
        while (acc >= 1) {
            size_t pg = written % npages;
            *(uint64_t *)(p + pg * 4096 + 8) = written + 1;
            written++;
            acc -= 1;
        }
        struct timespec d = {0, 1000000};
        nanosleep(&d, 0);
        double now = now_ms();
        if (now - last > maxgap) { maxgap = now - last; gap_at = now; }
        if (now - last > 3) printf("STALL %.2f at %.0f\n", now - last, now);
        last = now;
        if (t % 1000 == 999) { printf("TICK %ld\n", t + 1); fflush(stdout); }
    }
    size_t bad = 0;
    for (size_t pg = 0; pg < npages; pg++) {
        uint64_t want = written > pg ? pg + npages * ((written - 1 - pg) / npages) + 1 : 0;
        unsigned char *q = p + pg * 4096;
        if (*(uint64_t *)(q + 8) != want || q[0] != pattern(pg * 4096) ||
            q[4032] != pattern(pg * 4096 + 4032))
            bad++;
    }
    CHECK(bad == 0, "%zu of %zu pages differ from an uninterrupted run", bad, npages);
    printf("WRITES %llu\n", (unsigned long long)written);
    printf("GAP %.2f ms at %.0f\n", maxgap, gap_at);
    finish();
    return failures != 0;
}
