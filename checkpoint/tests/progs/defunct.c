/* Defunct children: one exits 23, one is killed by SIGTERM; the parent leaves both unreaped
 * until "go", then reaps them and prints what it got. */
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
int main(void) {
    pid_t a = fork();
    if (a == 0) _exit(23);
    pid_t b = fork();
    if (b == 0) { for (;;) pause(); }
    kill(b, SIGTERM);
    /* both are zombies once /proc says so */
    for (int i = 0; i < 500; i++) {
        char p[64], s[512]; size_t n;
        int za = 0, zb = 0;
        snprintf(p, sizeof p, "/proc/%d/stat", a); slurp_into(p, s, sizeof s, &n);
        za = strstr(s, ") Z ") != NULL;
        snprintf(p, sizeof p, "/proc/%d/stat", b); slurp_into(p, s, sizeof s, &n);
        zb = strstr(s, ") Z ") != NULL;
        if (za && zb) break;
        usleep(10000);
    }
    printf("READY a=%d b=%d\n", a, b); fflush(stdout);
    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    int sa = 0, sb = 0;
    pid_t ra = waitpid(a, &sa, WNOHANG), rb = waitpid(b, &sb, WNOHANG);
    printf("REAPED a=%d:%d b=%d:%d\n", ra == a, WIFEXITED(sa) ? WEXITSTATUS(sa) : -1,
           rb == b, WIFSIGNALED(sb) ? WTERMSIG(sb) : -1);
    fflush(stdout);
    return 0;
}
