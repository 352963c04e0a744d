/* A child holding two IP sockets (network connections are not carried): the pod must be
 * refused, naming this process and descriptors, and keep running. */
#include "common.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
int main(void) {
    pid_t c = fork();
    if (c == 0) {
        int sv[2] = {socket(AF_INET, SOCK_STREAM, 0), socket(AF_INET, SOCK_DGRAM, 0)};
        if (sv[0] < 0 || sv[1] < 0) _exit(2);
        printf("READY fds=%d,%d\n", sv[0], sv[1]); fflush(stdout);
        char go[16];
        if (read(0, go, sizeof go) <= 0) _exit(5);
        _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    printf("DONE %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1); fflush(stdout);
    return 0;
}
