/* Helpers shared by the checkpoint test programs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

/* Reads a whole (small) file into buf (no heap, no new mappings). */
__attribute__((unused)) static char *slurp_into(const char *path, char *b, size_t cap, size_t *len) {
    size_t n = 0; ssize_t r;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) { while ((r = read(fd, b + n, cap - 1 - n)) > 0) n += r; close(fd); }
    *len = n; b[n] = 0; return b;
}
static char stdout_buf[1 << 16];
static void setup_stdout(void) { setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf); }

__attribute__((unused)) static uint64_t fnv(const void *p, size_t n) {
    const unsigned char *c = p; uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= c[i]; h *= 1099511628211ULL; }
    return h;
}

__attribute__((unused)) static void ready(void) { printf("READY\n"); fflush(stdout); }

__attribute__((unused)) static void finish(void) {
    if (!failures) printf("PASS\n");
    fflush(stdout);
}
