/* Sends SIGUSR1 to argv[1] every 20 microseconds until killed. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    pid_t p = atoi(argv[1]);
    for (;;) { if (kill(p, SIGUSR1)) return 0; usleep(20); }
}
