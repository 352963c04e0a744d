/* A stopped child: the parent stops it (SIGSTOP) and waits for "go"; then it checks the child
 * is still stopped, continues it and reaps it. */
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
static char state_of(pid_t p) {
    char path[64], s[512]; size_t n;
    snprintf(path, sizeof path, "/proc/%d/stat", p);
    slurp_into(path, s, sizeof s, &n);
    char *q = strrchr(s, ')');
    return q && q[1] == ' ' ? q[2] : '?';
}
int main(void) {
    pid_t c = fork();
    if (c == 0) { for (;;) { usleep(1000); } }
    kill(c, SIGSTOP);
    int st = 0;
    waitpid(c, &st, WUNTRACED);
    printf("READY child=%d stopped=%d\n", c, WIFSTOPPED(st)); fflush(stdout);
    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    char s1 = state_of(c);
    kill(c, SIGCONT);
    usleep(100000);
    char s2 = state_of(c);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    printf("STATES before=%c after=%c killed=%d\n", s1, s2, WIFSIGNALED(st) && WTERMSIG(st) == 9);
    fflush(stdout);
    return 0;
}
