/* Shared state between a parent and its child: one open file description (shared offset) and
 * a MAP_SHARED|MAP_ANONYMOUS page used to take turns. Both write before "go" and after; the
 * file must hold the four lines in order (the offset is shared, nothing overwritten). */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    volatile int *turn = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (fd < 0 || turn == MAP_FAILED) return 2;
    *turn = 0;
    pid_t c = fork();
    if (c == 0) {
        write(fd, "before-child\n", 13);
        *turn = 1;
        while (*turn != 2) usleep(1000);
        write(fd, "after-child\n", 12);
        *turn = 3;
        _exit(0);
    }
    while (*turn != 1) usleep(1000);
    write(fd, "before-parent\n", 14);
    printf("READY\n"); fflush(stdout);
    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    *turn = 2;
    while (*turn != 3) usleep(1000);
    write(fd, "after-parent\n", 13);
    int st = 0;
    waitpid(c, &st, 0);
    char buf[256]; size_t n;
    slurp_into(argv[1], buf, sizeof buf, &n);
    int ok = strcmp(buf, "before-child\nbefore-parent\nafter-child\nafter-parent\n") == 0;
    printf("%s child=%d\n", ok ? "PASS" : "FAIL", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    if (!ok) printf("file: %s", buf);
    fflush(stdout);
    return ok ? 0 : 1;
}
