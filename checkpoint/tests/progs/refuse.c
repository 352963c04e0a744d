/* Holds state the engine cannot save (socket, pipe, eventfd, memfd, a POSIX timer, a child
 * process); waits in read(0). */
#include "common.h"
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
int main(void) {
    setup_stdout();
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int p[2]; pipe(p);
    int e = eventfd(0, 0);
    int m = memfd_create("zckpt", 0);
    timer_t t;
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_MONOTONIC, &sev, &t);
    pid_t kid = fork();
    if (kid == 0) { pause(); _exit(0); }
    (void)s; (void)e; (void)m;
    ready();
    char buf[16];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r == 3, "read returned %zd", r);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    finish();
    return failures != 0;
}
