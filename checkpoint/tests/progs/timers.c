/* POSIX timers across a checkpoint: ids with a gap, clocks, signal and value, process- and
 * thread-directed notification, SIGEV_NONE, time left and interval, and one that keeps
 * firing. After "go": /proc/self/timers reads as before, the times left are those saved
 * (less than a second of the restore elapsed), the intervals exact, and the firing timer
 * still fires. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <time.h>

static volatile sig_atomic_t fired;
static void on_usr2(int s) { (void)s; fired++; }
static volatile pid_t helper_tid;
static void *helper(void *a) { (void)a; helper_tid = gettid(); for (;;) pause(); return NULL; }

static double ts(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }

int main(void) {
    setup_stdout();
    signal(SIGUSR2, on_usr2);
    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR1); sigaddset(&m, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    pthread_t th; pthread_create(&th, NULL, helper, NULL);
    while (!helper_tid) usleep(1000);
    timer_t t[5];
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL; ev.sigev_signo = SIGUSR1; ev.sigev_value.sival_ptr = (void *)0x1234;
    timer_create(CLOCK_MONOTONIC, &ev, &t[0]);
    timer_create(CLOCK_MONOTONIC, &ev, &t[1]);
    ev.sigev_notify = SIGEV_THREAD_ID; ev.sigev_signo = SIGRTMIN + 1; ev.sigev_value.sival_int = 7;
    ev._sigev_un._tid = helper_tid;
    timer_create(CLOCK_REALTIME, &ev, &t[2]);
    ev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_BOOTTIME, &ev, &t[3]);
    ev.sigev_notify = SIGEV_SIGNAL; ev.sigev_signo = SIGUSR2;
    timer_create(CLOCK_MONOTONIC, &ev, &t[4]);
    timer_delete(t[1]);                                /* a gap in the ids */
    struct itimerspec a = {{7, 500000000}, {3600, 0}};
    timer_settime(t[0], 0, &a, NULL);
    struct itimerspec b = {{0, 0}, {100, 250}};
    timer_settime(t[2], 0, &b, NULL);
    struct itimerspec c = {{1, 1}, {50, 0}};
    timer_settime(t[3], 0, &c, NULL);
    struct itimerspec d = {{0, 10000000}, {0, 10000000}};
    timer_settime(t[4], 0, &d, NULL);
    char before[4096], after[4096]; size_t n;
    slurp_into("/proc/self/timers", before, sizeof before, &n);
    struct itimerspec g0; timer_gettime(t[0], &g0);
    ready();

    char go[16];
    while (read(0, go, sizeof go) < 0 && errno == EINTR) {}
    slurp_into("/proc/self/timers", after, sizeof after, &n);
    CHECK(!strcmp(before, after), "/proc/self/timers\nbefore:\n%s\nafter:\n%s", before, after);
    struct itimerspec g;
    timer_gettime(t[0], &g);
    CHECK(ts(g.it_value) <= ts(g0.it_value) && ts(g0.it_value) - ts(g.it_value) < 1.0, "t0 left %f, was %f", ts(g.it_value), ts(g0.it_value));
    CHECK(g.it_interval.tv_sec == 7 && g.it_interval.tv_nsec == 500000000, "t0 interval");
    timer_gettime(t[2], &g);
    CHECK(ts(g.it_value) > 99 && ts(g.it_value) <= 100.000001 && g.it_interval.tv_sec == 0, "t2 left %f", ts(g.it_value));
    timer_gettime(t[3], &g);
    CHECK(ts(g.it_value) > 49 && g.it_interval.tv_sec == 1 && g.it_interval.tv_nsec == 1, "t3");
    CHECK(timer_gettime(t[1], &g) < 0 && errno == EINVAL, "deleted timer came back");
    int was = fired;
    struct timespec nap = {0, 200000000};
    while (nanosleep(&nap, &nap) < 0 && errno == EINTR) {}
    CHECK(fired > was + 5, "the periodic timer fired %d times in 200 ms", fired - was);
    finish();
    return failures != 0;
}
