/* Sets up one of every kind of single-threaded state, waits in read(0), then verifies it all.
 * Usage: state WORKDIR [--drop]   (WORKDIR must exist and be world-writable) */
#include "common.h"
#include <fenv.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <grp.h>

extern ptrdiff_t __rseq_offset;
extern unsigned int __rseq_size;
static __thread uint64_t tls_word = 0x1122334455667788ULL;
static volatile sig_atomic_t usr1_count;
static void on_usr1(int s) { (void)s; usr1_count++; }

#define ANON_SZ (8u << 20)
#define SHM_SZ (1u << 20)
#define PG 4096

static char maps_raw[1 << 18];
static void maps_norm(char *out) {
    size_t n; char *m = slurp_into("/proc/self/maps", maps_raw, sizeof maps_raw, &n); size_t o = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        char range[64], perms[8], off[32], dev[16], path[512] = ""; unsigned long ino;
        sscanf(line, "%63s %7s %31s %15s %lu %511[^\n]", range, perms, off, dev, &ino, path);
        char *p = path; while (*p == ' ') p++;
        if (strstr(p, "(deleted)")) { dev[0] = 0; ino = 0; }
        o += sprintf(out + o, "%s %s %s %s %lu %s\n", range, perms, off, dev, ino, p);
    }
    out[o] = 0;
}

struct snap {
    char maps[1 << 18], cmdline[1 << 16], environ[1 << 16], auxv[4096], exe[512], cwd[512], comm[32];
    size_t cmdline_n, environ_n, auxv_n;
    void *brk; mode_t umask; int pers;
    struct rlimit rl[RLIM_NLIMITS];
    struct sigaction sa[65];
    sigset_t mask;
    uid_t r, e, s; gid_t gr, ge, gs; int ngroups; gid_t groups[64];
    int fl[16], fdfl[16]; off_t pos[16];
    char link[16][600]; mode_t mode[16]; uid_t fuid[16]; gid_t fgid[16];
    void *robust_head; size_t robust_len; int *tid_addr;
    int nnp;
};

static void take(struct snap *s) {
    maps_norm(s->maps);
    slurp_into("/proc/self/cmdline", s->cmdline, sizeof s->cmdline, &s->cmdline_n);
    slurp_into("/proc/self/environ", s->environ, sizeof s->environ, &s->environ_n);
    slurp_into("/proc/self/auxv", s->auxv, sizeof s->auxv, &s->auxv_n);
    memset(s->exe, 0, sizeof s->exe); readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
    getcwd(s->cwd, sizeof s->cwd);
    prctl(PR_GET_NAME, s->comm);
    s->brk = sbrk(0);
    s->umask = umask(0); umask(s->umask);
    s->pers = personality(0xffffffff);
    for (int i = 0; i < RLIM_NLIMITS; i++) getrlimit(i, &s->rl[i]);
    for (int i = 1; i < 65; i++) { memset(&s->sa[i], 0, sizeof s->sa[i]); sigaction(i, NULL, &s->sa[i]); }
    sigprocmask(SIG_BLOCK, NULL, &s->mask);
    getresuid(&s->r, &s->e, &s->s); getresgid(&s->gr, &s->ge, &s->gs);
    s->ngroups = getgroups(64, s->groups);
    for (int fd = 0; fd < 16; fd++) {
        s->fl[fd] = fcntl(fd, F_GETFL); s->fdfl[fd] = fcntl(fd, F_GETFD);
        s->pos[fd] = fd > 2 ? lseek(fd, 0, SEEK_CUR) : 0;
        char lp[64]; snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
        memset(s->link[fd], 0, sizeof s->link[fd]); readlink(lp, s->link[fd], sizeof s->link[fd] - 1);
        struct stat st = {0}; fstat(fd, &st);
        s->mode[fd] = st.st_mode; s->fuid[fd] = st.st_uid; s->fgid[fd] = st.st_gid;
    }
    syscall(SYS_get_robust_list, 0, &s->robust_head, &s->robust_len);
    prctl(PR_GET_TID_ADDRESS, &s->tid_addr);
    s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
}

static void compare(struct snap *a, struct snap *b) {
    CHECK(!strcmp(a->maps, b->maps), "maps differ:\n--- before\n%s--- after\n%s", a->maps, b->maps);
    CHECK(a->cmdline_n == b->cmdline_n && !memcmp(a->cmdline, b->cmdline, a->cmdline_n), "cmdline");
    CHECK(a->environ_n == b->environ_n && !memcmp(a->environ, b->environ, a->environ_n), "environ");
    CHECK(a->auxv_n == b->auxv_n && !memcmp(a->auxv, b->auxv, a->auxv_n), "auxv");
    CHECK(!strcmp(a->exe, b->exe), "exe %s vs %s", a->exe, b->exe);
    CHECK(!strcmp(a->cwd, b->cwd), "cwd %s vs %s", a->cwd, b->cwd);
    CHECK(!strcmp(a->comm, b->comm), "comm %s vs %s", a->comm, b->comm);
    CHECK(a->brk == b->brk, "brk %p vs %p", a->brk, b->brk);
    CHECK(a->umask == b->umask, "umask %o vs %o", a->umask, b->umask);
    CHECK(a->pers == b->pers, "personality %x vs %x", a->pers, b->pers);
    for (int i = 0; i < RLIM_NLIMITS; i++)
        CHECK(a->rl[i].rlim_cur == b->rl[i].rlim_cur && a->rl[i].rlim_max == b->rl[i].rlim_max, "rlimit %d", i);
    for (int i = 1; i < 65; i++)
        CHECK(a->sa[i].sa_handler == b->sa[i].sa_handler && a->sa[i].sa_flags == b->sa[i].sa_flags &&
              !memcmp(&a->sa[i].sa_mask, &b->sa[i].sa_mask, 8), "sigaction %d", i);
    CHECK(!memcmp(&a->mask, &b->mask, 8), "signal mask");
    CHECK(a->r == b->r && a->e == b->e && a->s == b->s, "uids %d %d", a->e, b->e);
    CHECK(a->gr == b->gr && a->ge == b->ge && a->gs == b->gs, "gids");
    CHECK(a->ngroups == b->ngroups && !memcmp(a->groups, b->groups, a->ngroups * sizeof(gid_t)), "groups");
    for (int fd = 0; fd < 16; fd++) {
        if (fd <= 2) continue; /* stdio is reattached */
        CHECK(a->fl[fd] == b->fl[fd], "fd %d flags %o vs %o", fd, a->fl[fd], b->fl[fd]);
        CHECK(a->fdfl[fd] == b->fdfl[fd], "fd %d fd-flags %d vs %d", fd, a->fdfl[fd], b->fdfl[fd]);
        CHECK(a->pos[fd] == b->pos[fd], "fd %d pos %ld vs %ld", fd, (long)a->pos[fd], (long)b->pos[fd]);
        CHECK(!strcmp(a->link[fd], b->link[fd]), "fd %d is %s, was %s", fd, b->link[fd], a->link[fd]);
        CHECK(a->mode[fd] == b->mode[fd] && a->fuid[fd] == b->fuid[fd] && a->fgid[fd] == b->fgid[fd],
              "fd %d mode %o owner %d:%d, was %o %d:%d", fd, b->mode[fd], b->fuid[fd], b->fgid[fd],
              a->mode[fd], a->fuid[fd], a->fgid[fd]);
    }
    CHECK(a->robust_head == b->robust_head && a->robust_len == b->robust_len, "robust list");
    CHECK(a->tid_addr == b->tid_addr, "clear_child_tid %p vs %p", a->tid_addr, b->tid_addr);
    CHECK(a->nnp == b->nnp, "no_new_privs");
}

int main(int argc, char **argv) {
    const char *dir = argv[1];
    int drop = argc > 2 && !strcmp(argv[2], "--drop");
    char path[600];
    setup_stdout();
    if (chdir(dir)) { perror("chdir"); return 1; }
    umask(027);
    prctl(PR_SET_NAME, "ckpt-state");
    personality(PER_LINUX | ADDR_NO_RANDOMIZE);
    struct rlimit rl = {1000, 4096}; setrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 12345; rl.rlim_max = RLIM_INFINITY; setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

    /* memory */
    unsigned char *anon = mmap(0, ANON_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < ANON_SZ / 2; i++) anon[i] = (unsigned char)(i * 131 + 7);  /* second half untouched */
    unsigned char *shm = mmap(0, SHM_SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < SHM_SZ; i++) shm[i] = (unsigned char)(i ^ 0x5a);
    unsigned char *guard = mmap(0, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(guard, 0x11, 3 * PG); mprotect(guard + PG, PG, PROT_NONE); mprotect(guard + 2 * PG, PG, PROT_READ);
    unsigned char *named = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    named[0] = 1;
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, named, 2 * PG, "zckpt-named");
    int mf = open("mapped.bin", O_RDWR | O_CREAT | O_TRUNC, 0666);
    for (int i = 0; i < 4 * PG; i++) { unsigned char c = (unsigned char)(i * 3); write(mf, &c, 1); }
    unsigned char *priv = mmap(0, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, mf, 0);
    memset(priv + PG, 0xab, PG);                          /* copied-on-write page */
    unsigned char *shf = mmap(0, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
    shf[3 * PG] = 0x77;
    uint64_t anon_sum = fnv(anon, ANON_SZ), shm_sum = fnv(shm, SHM_SZ), priv_sum = fnv(priv, 4 * PG);
    char *heap[100]; uint64_t heap_sum = 0;
    for (int i = 0; i < 100; i++) { heap[i] = malloc(100 + i * 37); memset(heap[i], i, 100 + i * 37); heap_sum += fnv(heap[i], 100 + i * 37); }

    /* files */
    int f3 = open("rw.txt", O_RDWR | O_CREAT | O_TRUNC, 0644); write(f3, "0123456789", 10); lseek(f3, 4, SEEK_SET);
    int f4 = open("append.txt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644); write(f4, "first\n", 6); lseek(f4, 2, SEEK_SET);
    int fdel = open("deleted.txt", O_RDWR | O_CREAT | O_TRUNC, 0600); write(fdel, "ghost content", 13); lseek(fdel, 6, SEEK_SET);
    fchmod(fdel, 0645); if (drop) fchown(fdel, 65534, 65534);   /* the process's own, once it drops */
    unlink("deleted.txt");
    int fnull = open("/dev/null", O_WRONLY), fzero = open("/dev/zero", O_RDONLY), furand = open("/dev/urandom", O_RDONLY | O_NONBLOCK);
    int fro = open("rw.txt", O_RDONLY); dup3(fro, 12, O_CLOEXEC); close(fro);
    int fdir = open(".", O_RDONLY | O_DIRECTORY);
    int fapp = open("append.txt", O_RDONLY);

    /* signals, timers */
    struct sigaction sa = {0}; sa.sa_handler = on_usr1; sa.sa_flags = SA_RESTART; sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR2); sigaddset(&m, SIGRTMIN + 2); sigprocmask(SIG_BLOCK, &m, NULL);
    raise(SIGUSR2);
    union sigval sv = {.sival_int = 4242}; sigqueue(getpid(), SIGRTMIN + 2, sv);
    struct itimerval it = {{0, 0}, {1000, 0}}; setitimer(ITIMER_REAL, &it, NULL);
    struct itimerval iv = {{7, 0}, {500, 0}}; setitimer(ITIMER_VIRTUAL, &iv, NULL);
    fesetround(FE_DOWNWARD);
    tls_word ^= 0xff;

    if (drop) {
        gid_t g[2] = {100, 65534}; setgroups(2, g);
        setresgid(65534, 65534, 65534); setresuid(65534, 65534, 65534);
    }
    void *rseq_area = (char *)__builtin_thread_pointer() + __rseq_offset;
    long rs = syscall(SYS_rseq, rseq_area, __rseq_size < 32 ? 32 : __rseq_size, 0, 0x53053053);
    int rseq_errno_before = rs < 0 ? errno : 0;

    static struct snap before, after;
    take(&before);
    ready();

    /* Wait in read(0) with known vector registers live across the system call. */
    static const uint64_t pat[4] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x1111222233334444ULL, 0xaaaabbbbccccddddULL};
    uint64_t outv[4 * 16] __attribute__((aligned(32)));
    char buf[64] = {0};
    long n;
    __asm__ volatile(
        "vmovdqu (%[p]), %%ymm0\n vpaddq %%ymm0, %%ymm0, %%ymm1\n vpaddq %%ymm1, %%ymm0, %%ymm7\n vpxor %%ymm1, %%ymm7, %%ymm15\n"
        "syscall\n"
        "vmovdqu %%ymm0, 0(%[o])\n vmovdqu %%ymm1, 32(%[o])\n vmovdqu %%ymm7, 64(%[o])\n vmovdqu %%ymm15, 96(%[o])\n"
        : "=a"(n)
        : "a"(0L), "D"(0L), "S"(buf), "d"(63L), [p] "r"(pat), [o] "r"(outv)
        : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm7", "xmm15");
    CHECK(n == 3 && !strcmp(buf, "go\n"), "read returned %ld '%s'", n, buf);
    uint64_t exp[16];
    for (int i = 0; i < 4; i++) { exp[i] = pat[i]; exp[4 + i] = pat[i] * 2; exp[8 + i] = pat[i] * 3; exp[12 + i] = (pat[i] * 2) ^ (pat[i] * 3); }
    CHECK(!memcmp(outv, exp, sizeof exp), "ymm registers changed");

    take(&after);
    compare(&before, &after);
    CHECK(fegetround() == FE_DOWNWARD, "rounding mode");
    CHECK(tls_word == (0x1122334455667788ULL ^ 0xff), "TLS");
    CHECK(fnv(anon, ANON_SZ) == anon_sum, "anon memory");
    CHECK(fnv(shm, SHM_SZ) == shm_sum, "shared anon memory");
    CHECK(fnv(priv, 4 * PG) == priv_sum, "private file mapping");
    CHECK(guard[0] == 0x11 && guard[2 * PG] == 0x11, "guard neighbours");
    uint64_t hs = 0; for (int i = 0; i < 100; i++) hs += fnv(heap[i], 100 + i * 37);
    CHECK(hs == heap_sum, "heap");
    void *big = malloc(50 << 20); memset(big, 1, 50 << 20); free(big);
    char *more[1000]; for (int i = 0; i < 1000; i++) { more[i] = malloc(1000); memset(more[i], 2, 1000); }
    CHECK(sbrk(0) > before.brk, "heap grew with malloc after restore");
    /* shared mapping still shares with the file */
    shf[0] = 0x42; unsigned char c0; pread(mf, &c0, 1, 0); CHECK(c0 == 0x42, "shared file mapping not shared");
    CHECK(shf[3 * PG] == 0x77, "shared mapping content");
    /* files */
    char b[16] = {0}; CHECK(read(f3, b, 3) == 3 && !memcmp(b, "456", 3), "rw offset");
    CHECK(write(f4, "second\n", 7) == 7, "append write");
    { char c[32] = {0}; ssize_t ln = pread(fapp, c, 31, 0); CHECK(ln == 13 && !strcmp(c, "first\nsecond\n"), "append content '%s'", c); }
    memset(b, 0, 16); CHECK(read(fdel, b, 7) == 7 && !strcmp(b, "content"), "deleted file content '%s'", b);
    { char l[600] = {0}; snprintf(path, sizeof path, "/proc/self/fd/%d", fdel); readlink(path, l, 599); CHECK(strstr(l, "(deleted)"), "deleted file link %s", l); }
    CHECK(write(fnull, "x", 1) == 1, "/dev/null");
    memset(b, 1, 16); CHECK(read(fzero, b, 16) == 16 && b[0] == 0 && b[15] == 0, "/dev/zero");
    CHECK(read(furand, b, 16) == 16, "/dev/urandom");
    memset(b, 0, 16); CHECK(pread(12, b, 4, 0) == 4 && !strcmp(b, "0123"), "fd 12");
    CHECK(fcntl(fdir, F_GETFL) >= 0, "dir fd");
    /* signals */
    sigset_t pend; sigpending(&pend);
    CHECK(sigismember(&pend, SIGUSR2), "pending SIGUSR2");
    CHECK(sigismember(&pend, SIGRTMIN + 2), "pending RT signal");
    siginfo_t si; sigset_t w; sigemptyset(&w); sigaddset(&w, SIGRTMIN + 2);
    struct timespec ts0 = {0, 0};
    CHECK(sigtimedwait(&w, &si, &ts0) == SIGRTMIN + 2 && si.si_value.sival_int == 4242 && si.si_code == SI_QUEUE, "RT siginfo value %d", si.si_value.sival_int);
    raise(SIGUSR1); CHECK(usr1_count == 1, "SIGUSR1 handler");
    struct itimerval now; getitimer(ITIMER_REAL, &now);
    CHECK(now.it_value.tv_sec > 900 && now.it_value.tv_sec <= 1000, "ITIMER_REAL %ld", now.it_value.tv_sec);
    getitimer(ITIMER_VIRTUAL, &now);
    CHECK(now.it_value.tv_sec >= 499 && now.it_interval.tv_sec == 7, "ITIMER_VIRTUAL %ld", now.it_value.tv_sec);
    rs = syscall(SYS_rseq, rseq_area, __rseq_size < 32 ? 32 : __rseq_size, 0, 0x53053053);
    CHECK(rs < 0 && errno == rseq_errno_before, "rseq registration (errno %d vs %d)", errno, rseq_errno_before);
    CHECK(sched_getcpu() >= 0, "sched_getcpu");
    (void)f4; (void)fnull;
    finish();
    return failures != 0;
}
