/* The paper's fork/waitpid example: a parent forks a child and waits for it; the child waits
 * for "go" on stdin and exits 42. After a restore the parent must still collect 42. */
#include "common.h"
#include <sys/wait.h>
int main(void) {
    pid_t c = fork();
    if (c == 0) {
        char buf[16];
        printf("CHILD %d READY\n", getpid()); fflush(stdout);
        if (read(0, buf, sizeof buf) <= 0) _exit(1);
        _exit(42);
    }
    int st = 0;
    pid_t r = waitpid(c, &st, 0);
    printf("REAPED %d pid-ok=%d exit=%d\n", (int)r, r == c, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    fflush(stdout);
    return 0;
}
