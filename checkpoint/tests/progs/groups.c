/* Sessions and process groups: child A starts a new session and forks A1 in it; child B
 * makes its own group and forks B1 into it; a third child C stays in the parent's group.
 * Everyone waits; "go" on stdin (read by the parent) ends them all. */
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
static void idle(void) { for (;;) pause(); }
int main(void) {
    pid_t a = fork();
    if (a == 0) { setsid(); if (fork() == 0) idle(); idle(); }
    pid_t b = fork();
    if (b == 0) { setpgid(0, 0); if (fork() == 0) idle(); idle(); }
    pid_t c = fork();
    if (c == 0) idle();
    usleep(200000);
    printf("READY\n"); fflush(stdout);
    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    printf("GROUPS sid(a)=%d pgid(b)=%d pgid(c)=%d\n", getsid(a), getpgid(b), getpgid(c));
    fflush(stdout);
    kill(-a, SIGKILL); kill(-b, SIGKILL); kill(c, SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}
