/* 64 MiB of anonymous memory that is only read (zero page) plus one written page. */
#include "common.h"
#include <sys/mman.h>
int main(void) {
    setup_stdout();
    size_t n = 64 << 20;
    volatile unsigned char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned long s = 0;
    for (size_t i = 0; i < n; i += 4096) s += p[i];
    p[12345] = 7;
    ready();
    char buf[16];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r == 3, "read");
    for (size_t i = 0; i < n; i += 4096) s += p[i];
    CHECK(s == 0 && p[12345] == 7 && p[n - 1] == 0, "contents");
    finish();
    return failures != 0;
}
