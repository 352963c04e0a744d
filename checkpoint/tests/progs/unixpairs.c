/* Unix socket pairs between a parent and its child across a checkpoint: data queued in both
 * directions (stream: 100000 + 5000 bytes; datagram: 4 datagrams of 1, 70000, 0 and 3 bytes;
 * seqpacket: 2 records), a peek offset in the middle of a queue, a half-shut pair, a pair
 * whose other end is closed, buffer sizes and flags. After "go" each side checks every byte
 * and boundary, and the state an uninterrupted run would see. */
#include "common.h"
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/ioctl.h>

static unsigned char pattern(size_t i, int seed) { return (unsigned char)(i * 31 + seed); }

static int read_full(int fd, unsigned char *b, size_t n) {
    size_t got = 0;
    while (got < n) { ssize_t r = read(fd, b + got, n - got); if (r <= 0) return -1; got += r; }
    return 0;
}

static int check_pattern(const unsigned char *b, size_t n, int seed) {
    for (size_t i = 0; i < n; i++) if (b[i] != pattern(i, seed)) return 0;
    return 1;
}

static unsigned char big[100000], small[5000], dg[70000];

int main(void) {
    setup_stdout();
    signal(SIGPIPE, SIG_IGN);
    int s[2], d[2], q[2], h[2], w[2], ctl[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q);
    socketpair(AF_UNIX, SOCK_STREAM, 0, h);
    socketpair(AF_UNIX, SOCK_STREAM, 0, w);
    socketpair(AF_UNIX, SOCK_STREAM, 0, ctl);
    int sndbuf = 65536;
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    for (size_t i = 0; i < sizeof big; i++) big[i] = pattern(i, 1);
    for (size_t i = 0; i < sizeof small; i++) small[i] = pattern(i, 2);
    for (size_t i = 0; i < sizeof dg; i++) dg[i] = pattern(i, 3);
    pid_t c = fork();
    if (c == 0) {
        close(s[0]); close(d[0]); close(q[0]); close(h[0]); close(ctl[0]);
        close(w[0]); close(w[1]);
        write(s[1], small, sizeof small);              /* parent's stream queue */
        send(q[1], "abc", 3, 0); send(q[1], "defgh", 5, 0); /* parent's seqpacket queue */
        char b; read(ctl[1], &b, 1);                   /* blocked here across the checkpoint */
        static unsigned char got[sizeof big];
        int ok = read_full(s[1], got, sizeof big) == 0 && check_pattern(got, sizeof big, 1);
        printf("CHILD stream %s\n", ok ? "ok" : "BAD");
        size_t want[] = {1, sizeof dg, 0, 3};
        for (int i = 0; i < 4; i++) {
            static unsigned char m[100000];
            ssize_t n = recv(d[1], m, sizeof m, MSG_DONTWAIT);
            int good = n == (ssize_t)want[i] && (i != 1 || check_pattern(m, n, 3)) && (i != 3 || !memcmp(m, "end", 3));
            if (!good) { ok = 0; printf("CHILD datagram %d: %zd bytes\n", i, n); }
        }
        ok &= recv(d[1], dg, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
        char t[16]; ssize_t n = read(h[1], t, sizeof t);
        ok &= n == 4 && !memcmp(t, "tail", 4) && read(h[1], t, sizeof t) == 0;
        ok &= write(h[1], "ack", 3) == 3;
        printf("CHILD %s\n", ok ? "PASS" : "FAIL"); fflush(stdout);
        _exit(ok ? 0 : 1);
    }
    close(s[1]); close(q[1]); close(ctl[1]);
    write(s[0], big, sizeof big);                       /* child's stream queue */
    send(d[0], "x", 1, 0); send(d[0], dg, sizeof dg, 0); send(d[0], "", 0, 0); send(d[0], "end", 3, 0);
    write(h[0], "tail", 4); shutdown(h[0], SHUT_WR);
    write(w[1], "bye", 3); close(w[1]);
    fcntl(d[0], F_SETFL, O_NONBLOCK);
    /* Wait for the child's data, then peek part of it with an offset. */
    while (1) { int n = 0; ioctl(s[0], FIONREAD, &n); if (n == sizeof small) break; usleep(1000); }
    int zero = 0;
    setsockopt(s[0], SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero);
    unsigned char peek4[4];
    recv(s[0], peek4, 4, MSG_PEEK);
    int sb_before; socklen_t sl = sizeof sb_before;
    getsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &sb_before, &sl);
    ready();

    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    int off = -2; sl = sizeof off;
    getsockopt(s[0], SOL_SOCKET, SO_PEEK_OFF, &off, &sl);
    CHECK(off == 4, "peek offset %d", off);
    unsigned char next3[3];
    CHECK(recv(s[0], next3, 3, MSG_PEEK) == 3 && next3[0] == pattern(4, 2) && next3[1] == pattern(5, 2) && next3[2] == pattern(6, 2), "peek continues at its offset");
    static unsigned char got[sizeof small];
    CHECK(read_full(s[0], got, sizeof got) == 0 && check_pattern(got, sizeof got, 2), "parent stream");
    int sb = 0; sl = sizeof sb;
    getsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &sb, &sl);
    CHECK(sb == sb_before, "SO_SNDBUF %d, was %d", sb, sb_before);
    char r[8];
    CHECK(recv(q[0], r, sizeof r, 0) == 3 && !memcmp(r, "abc", 3), "record 1");
    CHECK(recv(q[0], r, sizeof r, 0) == 5 && !memcmp(r, "defgh", 5), "record 2");
    CHECK(fcntl(d[0], F_GETFL) & O_NONBLOCK, "datagram end lost O_NONBLOCK");
    CHECK(!(fcntl(q[0], F_GETFL) & O_NONBLOCK), "seqpacket end became non-blocking");
    CHECK(write(h[0], "more", 4) < 0 && errno == EPIPE, "half-shut end writes again");
    CHECK(read(w[0], r, sizeof r) == 3 && !memcmp(r, "bye", 3), "widowed end lost its data");
    CHECK(read(w[0], r, sizeof r) == 0, "widowed end: no EOF");
    CHECK(write(w[0], "x", 1) < 0 && errno == EPIPE, "widowed end writes");
    write(ctl[0], "g", 1);
    int st; waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %x", st);
    CHECK(read(h[0], r, sizeof r) == 3 && !memcmp(r, "ack", 3), "answer on the half-shut pair");
    finish();
    return failures != 0;
}
