/* Holds every kind of state the engine refuses to save, at once: a socket, a pipe, an eventfd
 * and an epoll descriptor (anonymous inodes), a memfd descriptor and mapping, a file lock, a
 * System V shared memory mapping, a mapping of a deleted file, a terminal and another
 * character device beyond stdio, a deleted directory (open, and as the working directory), a
 * POSIX timer, a child process, a private mount namespace and a seccomp filter.
 * Usage: refuse DIR (a writable scratch directory). Waits in read(0). */
#include "common.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
int main(int argc, char **argv) {
    char path[600];
    (void)argc;
    setup_stdout();
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int p[2]; CHECK(pipe(p) == 0, "pipe");
    int e = eventfd(0, 0);
    int ep = epoll_create1(0);
    int m = memfd_create("zckpt", 0);
    CHECK(ftruncate(m, 4096) == 0, "ftruncate");
    void *mm = mmap(0, 4096, PROT_READ, MAP_SHARED, m, 0);
    snprintf(path, sizeof path, "%s/locked", argv[1]);
    int lk = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(flock(lk, LOCK_EX) == 0, "flock");
    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    void *sv = shmat(shm, 0, SHM_RDONLY);
    shmctl(shm, IPC_RMID, 0);
    snprintf(path, sizeof path, "%s/mapped-then-deleted", argv[1]);
    int df = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(ftruncate(df, 4096) == 0, "ftruncate");
    void *dm = mmap(0, 4096, PROT_READ, MAP_PRIVATE, df, 0);
    close(df); unlink(path);
    int tty = open("/dev/ptmx", O_RDWR | O_NOCTTY);
    int full = open("/dev/full", O_WRONLY);
    snprintf(path, sizeof path, "%s/gone", argv[1]);
    mkdir(path, 0700);
    int gone = open(path, O_RDONLY | O_DIRECTORY);
    CHECK(chdir(path) == 0, "chdir");
    rmdir(path);
    timer_t t;
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_MONOTONIC, &sev, &t);
    pid_t kid = fork();
    if (kid == 0) { pause(); _exit(0); }
    CHECK(unshare(CLONE_NEWNS) == 0, "unshare");
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0, "seccomp");
    CHECK(s >= 0 && e >= 0 && ep >= 0 && m >= 0 && lk >= 0 && tty >= 0 && full >= 0 && gone >= 0,
          "descriptors");
    CHECK(mm != MAP_FAILED && sv != (void *)-1 && dm != MAP_FAILED, "mappings");
    ready();
    char buf[16];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r == 3, "read returned %zd", r);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    finish();
    return failures != 0;
}
