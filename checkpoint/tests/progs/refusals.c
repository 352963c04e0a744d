/* Children that each hold one thing the engine must refuse, naming the process, the
 * descriptor and the reason: a TCP listener, a unix socket bound to a path, a descriptor in
 * flight, credentials in flight, a unix socket connected outside the pod (argv[2]), and an
 * epoll registration whose target descriptor was closed; and a FIFO in the pod's /dev/shm.
 * Each child prints "HOLD what pid fd"
 * and waits; after "go" the parent ends them and prints DONE. */
#include "common.h"
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static int hold_pipe[2], held_pipe[2];

static void hold(const char *what, int fd) {
    close(hold_pipe[1]);
    printf("HOLD %s %d %d\n", what, getpid(), fd); fflush(stdout);
    write(held_pipe[1], "h", 1);
    char b; read(hold_pipe[0], &b, 1);
    _exit(0);
}

static int unix_addr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a); a->sun_family = AF_UNIX;
    strncpy(a->sun_path, path, sizeof a->sun_path - 1);
    return sizeof *a;
}

int main(int argc, char **argv) {
    setup_stdout();
    pipe(hold_pipe); pipe(held_pipe);
    pid_t kids[6]; int n = 0;
    if ((kids[n++] = fork()) == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bind(s, (void *)&a, sizeof a); listen(s, 1);
        hold("tcp", s);
    }
    if ((kids[n++] = fork()) == 0) {
        char path[256]; snprintf(path, sizeof path, "%s/listener", argv[1]);
        struct sockaddr_un a; int len = unix_addr(&a, path);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        bind(s, (void *)&a, len); listen(s, 1);
        hold("bound", s);
    }
    if ((kids[n++] = fork()) == 0) {
        int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        int passed = eventfd(0, 0);
        char byte = 'x'; struct iovec iov = {&byte, 1};
        char ctl[CMSG_SPACE(sizeof(int))];
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &passed, sizeof(int));
        sendmsg(sv[0], &m, 0);
        hold("inflight", sv[1]);
    }
    if ((kids[n++] = fork()) == 0) {
        int sv[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
        int on = 1; setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
        send(sv[0], "hi", 2, 0);
        hold("creds", sv[1]);
    }
    if ((kids[n++] = fork()) == 0) {
        struct sockaddr_un a; int len = unix_addr(&a, argv[2]);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(s, (void *)&a, len)) { printf("connect %s failed\n", argv[2]); fflush(stdout); }
        hold("outside", s);
    }
    if ((kids[n++] = fork()) == 0) {
        int e = eventfd(0, 0), ep = epoll_create1(0);
        int gone = dup(e);
        struct epoll_event ev = {.events = EPOLLIN};
        epoll_ctl(ep, EPOLL_CTL_ADD, gone, &ev);
        close(gone);
        hold("stale", ep);
    }
    for (int i = 0; i < n; i++) { char b; read(held_pipe[0], &b, 1); }
    mkfifo("/dev/shm/zos-fifo", 0600);
    ready();
    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    close(hold_pipe[1]);
    int ok = 0;
    for (int i = 0; i < n; i++) { int st; waitpid(kids[i], &st, 0); ok += WIFEXITED(st) && WEXITSTATUS(st) == 0; }
    printf("DONE %d\n", ok); fflush(stdout);
    return 0;
}
