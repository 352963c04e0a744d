/* eventfd, timerfd, signalfd and epoll state across a checkpoint: set up, print READY, wait
 * for "go" on stdin, then check every bit of state an uninterrupted run would see.
 * An eventfd is shared with a child (blocked in read on another shared eventfd). */
#include "common.h"
#include <signal.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

static double ts(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }
static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return ts(t); }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

/* The "tfd: N events: X data: Y" part of each registration line of an epoll fd, sorted (the
 * kernel lists them in the order of its files' addresses). */
static void registrations(int ep, char *out, size_t cap) {
    char path[64], buf[4096]; size_t n;
    char *lines[64]; int k = 0;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
    slurp_into(path, buf, sizeof buf, &n);
    for (char *l = strtok(buf, "\n"); l && k < 64; l = strtok(NULL, "\n")) {
        if (strncmp(l, "tfd:", 4)) continue;
        char *end = strstr(l, "pos:");
        if (end) *end = 0;
        lines[k++] = l;
    }
    qsort(lines, k, sizeof lines[0], cmp_str);
    out[0] = 0;
    for (int i = 0; i < k; i++) { strncat(out, lines[i], cap - strlen(out) - 2); strcat(out, "\n"); }
}

static long fdinfo_field(int fd, const char *key, int base) {
    char path[64], buf[4096]; size_t n;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    slurp_into(path, buf, sizeof buf, &n);
    char *p = strstr(buf, key);
    return p ? strtol(p + strlen(key), NULL, base) : -1;
}

int main(void) {
    setup_stdout();
    int e1 = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK);
    int e2 = eventfd(0, 0);
    int e3 = eventfd(0, 0);
    uint64_t big = (1ULL << 40) + 7;
    write(e2, &big, 8);
    pid_t c = fork();
    if (c == 0) {
        uint64_t v;
        read(e3, &v, 8);                 /* blocked here during the checkpoint */
        read(e2, &v, 8);
        printf("CHILD e2=%llu\n", (unsigned long long)v); fflush(stdout);
        uint64_t three = 3;
        write(e2, &three, 8);
        _exit(v == big ? 0 : 1);
    }
    /* Timers. */
    int t1 = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec rel = {{0, 0}, {3600, 0}};
    timerfd_settime(t1, 0, &rel, NULL);
    int t2 = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    double deadline = (double)(time(NULL) + 3601);
    struct itimerspec abs = {{7, 123}, {(time_t)deadline, 0}};
    timerfd_settime(t2, TFD_TIMER_ABSTIME, &abs, NULL);
    int t3 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct timespec m; clock_gettime(CLOCK_MONOTONIC, &m);
    struct itimerspec past = {{0, 100000000}, {m.tv_sec - 1, m.tv_nsec}};
    timerfd_settime(t3, TFD_TIMER_ABSTIME, &past, NULL);
    int t4 = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
    struct itimerspec once = {{0, 0}, {0, 1000000}};
    timerfd_settime(t4, 0, &once, NULL);
    usleep(20000);
    /* A signalfd with a pending signal. */
    sigset_t mask; sigemptyset(&mask); sigaddset(&mask, SIGUSR1); sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigset_t only1; sigemptyset(&only1); sigaddset(&only1, SIGUSR1);
    int s1 = signalfd(-1, &only1, SFD_NONBLOCK);
    kill(getpid(), SIGUSR1);
    /* epoll over them. */
    int p[2]; pipe(p); write(p[1], "x", 1);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLET; ev.data.u64 = 0x1122334455667788ULL; epoll_ctl(ep, EPOLL_CTL_ADD, e1, &ev);
    ev.events = EPOLLIN | EPOLLONESHOT; ev.data.u64 = 7; epoll_ctl(ep, EPOLL_CTL_ADD, t4, &ev);
    ev.events = EPOLLIN; ev.data.u64 = 9; epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    ev.events = EPOLLOUT | EPOLLEXCLUSIVE; ev.data.u64 = 11; epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev);
    char regs_before[2048], regs_after[2048];
    registrations(ep, regs_before, sizeof regs_before);
    long t2_flags = fdinfo_field(t2, "settime flags:", 8);
    ready();

    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    uint64_t v; int reads = 0;
    /* The child takes e2's count and puts 3 back. */
    uint64_t one = 1; write(e3, &one, 8);
    int st; waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %x", st);
    read(e2, &v, 8);
    CHECK(v == 3, "e2 after the child: %llu", (unsigned long long)v);
    /* Timers. */
    struct itimerspec g;
    timerfd_gettime(t1, &g);
    CHECK(ts(g.it_value) > 3500 && ts(g.it_value) <= 3600 && g.it_interval.tv_sec == 0, "t1 left %f", ts(g.it_value));
    CHECK(fdinfo_field(t1, "clockid:", 10) == CLOCK_MONOTONIC, "t1 clock");
    timerfd_gettime(t2, &g);
    double err = now(CLOCK_REALTIME) + ts(g.it_value) - deadline;
    CHECK(err > -0.05 && err < 0.05, "t2 deadline off by %f s", err);
    CHECK(g.it_interval.tv_sec == 7 && g.it_interval.tv_nsec == 123, "t2 interval %ld.%09ld", (long)g.it_interval.tv_sec, g.it_interval.tv_nsec);
    CHECK(fdinfo_field(t2, "settime flags:", 8) == t2_flags && t2_flags == TFD_TIMER_ABSTIME, "t2 flags %ld", fdinfo_field(t2, "settime flags:", 8));
    CHECK(fdinfo_field(t2, "clockid:", 10) == CLOCK_REALTIME, "t2 clock");
    CHECK(read(t3, &v, 8) == 8 && v >= 10, "t3 ticks %llu (the second before it was armed is lost)", (unsigned long long)v);
    /* epoll: what an uninterrupted run would report now. */
    registrations(ep, regs_after, sizeof regs_after);
    CHECK(strcmp(regs_before, regs_after) == 0, "registrations\nbefore:\n%safter:\n%s", regs_before, regs_after);
    struct epoll_event out[8];
    int n = epoll_wait(ep, out, 8, 0);
    uint64_t seen = 0;
    for (int i = 0; i < n; i++) seen |= 1ULL << (out[i].data.u64 == 0x1122334455667788ULL ? 0 : out[i].data.u64);
    CHECK(seen == ((1 << 0) | (1 << 7) | (1 << 9) | (1 << 11)), "first wait saw %llx", (unsigned long long)seen);
    n = epoll_wait(ep, out, 8, 0);
    seen = 0;
    for (int i = 0; i < n; i++) seen |= 1ULL << (out[i].data.u64 == 0x1122334455667788ULL ? 0 : out[i].data.u64);
    CHECK(seen == ((1 << 9) | (1 << 11)), "second wait saw %llx (edge-triggered and one-shot must not repeat)", (unsigned long long)seen);
    /* eventfd: semaphore mode reads 1 at a time, five times. */
    while (read(e1, &v, 8) == 8) { CHECK(v == 1, "semaphore read %llu", (unsigned long long)v); reads++; }
    CHECK(reads == 5 && errno == EAGAIN, "e1: %d reads (errno %d)", reads, errno);
    CHECK(fcntl(e1, F_GETFL) & O_NONBLOCK, "e1 lost O_NONBLOCK");
    CHECK(!(fcntl(e2, F_GETFL) & O_NONBLOCK), "e2 became non-blocking");
    CHECK(read(t4, &v, 8) == 8 && v == 1, "t4 ticks %llu", (unsigned long long)v);
    CHECK(read(t4, &v, 8) < 0 && errno == EAGAIN, "t4 read twice");
    /* signalfd. */
    struct signalfd_siginfo si;
    CHECK(read(s1, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1, "signalfd");
    CHECK(fdinfo_field(s1, "sigmask:", 16) == 1 << (SIGUSR1 - 1), "signalfd mask %lx", fdinfo_field(s1, "sigmask:", 16));
    CHECK(read(s1, &si, sizeof si) < 0 && errno == EAGAIN, "signalfd read twice");
    finish();
    return failures != 0;
}
