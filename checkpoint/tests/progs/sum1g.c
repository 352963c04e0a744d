/* Running checksum over 1 GiB (argv[1] MiB): fills memory, then mixes it in several passes,
 * printing the final value. Run it twice, once checkpointed mid-way: the values must match. */
#include "common.h"
#include <sys/mman.h>
int main(int argc, char **argv) {
    setup_stdout();
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 1024, n = (mib << 20) / 8;
    uint64_t *a = mmap(0, n * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t x = 0x9e3779b97f4a7c15ULL, h = 0;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; a[i] = x; }
    printf("FILLED\n"); fflush(stdout);
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < n; i++) { h = (h ^ a[i]) * 0x100000001b3ULL; a[i] = h ^ (a[i] >> 7); }
    printf("SUM %016llx\n", (unsigned long long)h);
    fflush(stdout);
    return 0;
}
