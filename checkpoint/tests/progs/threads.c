/* Four threads blocked in different ways (futex via condvar, nanosleep, busy compute, poll)
 * plus the main thread in read(0). After restore each thread checks its TID, name, TLS,
 * signal mask, rseq registration and progress; main prints PASS. With --any-tid the TIDs may
 * differ (a copy restored while the original still runs). */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

extern ptrdiff_t __rseq_offset;
extern unsigned int __rseq_size;
static __thread long tls_val;
static volatile int stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t bar;
static pid_t tids[5];
static int errs[5];
static volatile uint64_t progress[5];
static int any_tid; /* --any-tid: restored under new TIDs (the original still runs) */

static int rseq_state(void) {
    void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
    long r = syscall(SYS_rseq, area, __rseq_size < 32 ? 32 : __rseq_size, 0, 0x53053053);
    return r < 0 ? errno : 0;
}

static void *worker(void *arg) {
    int id = (int)(long)arg, err = 0;
    char name[16], got[16];
    snprintf(name, sizeof name, "worker-%d", id);
    pthread_setname_np(pthread_self(), name);
    tls_val = id * 1000 + 7;
    tids[id] = gettid();
    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGRTMIN + id); pthread_sigmask(SIG_BLOCK, &m, NULL);
    int rs = rseq_state();
    if (id == 2) { setpriority(PRIO_PROCESS, 0, 5); cpu_set_t c; CPU_ZERO(&c); CPU_SET(0, &c); sched_setaffinity(0, sizeof c, &c); }
    pthread_barrier_wait(&bar);
    if (id == 1) {
        pthread_mutex_lock(&mu);
        while (!stop) pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    } else if (id == 2) {
        while (!stop) { struct timespec ts = {0, 20 * 1000 * 1000}; nanosleep(&ts, NULL); progress[2]++; }
    } else if (id == 3) {
        uint64_t x = 1, n = 0;
        while (!stop) { for (int i = 0; i < 1000; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL; n++; progress[3] = n; }
        uint64_t y = 1; for (uint64_t k = 0; k < n * 1000; k++) y = y * 6364136223846793005ULL + 1442695040888963407ULL;
        if (x != y) { printf("FAIL thread 3 compute state\n"); err++; }
    } else {
        while (!stop) { poll(NULL, 0, 30); progress[4]++; }
    }
    pthread_getname_np(pthread_self(), got, sizeof got);
    if (strcmp(got, name)) { printf("FAIL thread %d name %s\n", id, got); err++; }
    if (tls_val != id * 1000 + 7) { printf("FAIL thread %d TLS\n", id); err++; }
    if (!any_tid && gettid() != tids[id]) { printf("FAIL thread %d tid %d vs %d\n", id, gettid(), tids[id]); err++; }
    sigset_t now; pthread_sigmask(SIG_BLOCK, NULL, &now);
    if (!sigismember(&now, SIGRTMIN + id)) { printf("FAIL thread %d sigmask\n", id); err++; }
    if (id == 2) {
        cpu_set_t c; sched_getaffinity(0, sizeof c, &c);
        if (getpriority(PRIO_PROCESS, 0) != 5 || CPU_COUNT(&c) != 1 || !CPU_ISSET(0, &c)) { printf("FAIL thread 2 nice/affinity\n"); err++; }
    }
    if (rseq_state() != rs) { printf("FAIL thread %d rseq %d vs %d\n", id, rseq_state(), rs); err++; }
    errs[id] = err;
    return NULL;
}

int main(int argc, char **argv) {
    setup_stdout();
    any_tid = argc > 1 && !strcmp(argv[1], "--any-tid");
    pthread_t th[5];
    pthread_barrier_init(&bar, NULL, 5);
    for (long i = 1; i <= 4; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    pthread_barrier_wait(&bar);
    usleep(100 * 1000);
    ready();
    char buf[16];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r == 3, "read returned %zd", r);
    uint64_t p2 = progress[2], p4 = progress[4];
    /* On a loaded machine the pinned, niced thread may wait for a core. */
    for (int i = 0; i < 100 && !(progress[2] > p2 && progress[4] > p4); i++) usleep(100 * 1000);
    CHECK(progress[2] > p2 && progress[4] > p4, "sleeping threads make progress");
    pthread_mutex_lock(&mu); stop = 1; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu);
    for (int i = 1; i <= 4; i++) { pthread_join(th[i], NULL); failures += errs[i]; }
    char *big = malloc(1 << 20); memset(big, 3, 1 << 20); free(big);
    finish();
    return failures != 0;
}
