/* Anonymous memory and heap only; waits in read(0), verifies, prints PASS. */
#include "common.h"
#include <sys/mman.h>
int main(void) {
    setup_stdout();
    size_t n = 16 << 20;
    unsigned char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < n; i += 3) p[i] = (unsigned char)(i * 13 + 1);
    char *h = malloc(4000); strcpy(h, "heap survives");
    uint64_t sum = fnv(p, n);
    ready();
    char buf[16];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r == 3, "read returned %zd", r);
    CHECK(fnv(p, n) == sum, "memory");
    CHECK(!strcmp(h, "heap survives"), "heap");
    finish();
    return failures != 0;
}
