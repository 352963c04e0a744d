/* File locks across a checkpoint: a POSIX write lock of the parent and a POSIX read lock of
 * its child on one file, a flock and an open-file-description lock on descriptions both
 * share. After "go": the lock lines of each descriptor read as before, and a newcomer finds
 * each lock held by the same owner. */
#include "common.h"
#include <sys/file.h>
#include <sys/wait.h>

/* The lock: lines of fd's fdinfo, without their leading number. */
static void lock_lines(int fd, char *out, size_t cap) {
    char path[64], buf[4096]; size_t n;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    slurp_into(path, buf, sizeof buf, &n);
    out[0] = 0;
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
        if (strncmp(l, "lock:", 5)) continue;
        char *kind = strchr(l, ':'); kind = kind ? strchr(kind + 1, ':') : NULL;
        strncat(out, kind ? kind + 1 : l, cap - strlen(out) - 2);
        strcat(out, "\n");
    }
}

/* Who holds a lock conflicting with a write lock on [start, start+len) of path: its pid, -1
 * for a description's lock, 0 for none. */
static int holder(const char *path, int start, int len, int ofd) {
    int fd = open(path, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    fcntl(fd, ofd ? F_OFD_GETLK : F_GETLK, &fl);
    close(fd);
    return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

int main(int argc, char **argv) {
    setup_stdout();
    (void)argc;
    char a[256], b[256], c[256];
    snprintf(a, sizeof a, "%s/posix", argv[1]);
    snprintf(b, sizeof b, "%s/flock", argv[1]);
    snprintf(c, sizeof c, "%s/ofd", argv[1]);
    int fa = open(a, O_RDWR | O_CREAT, 0666), fb = open(b, O_RDWR | O_CREAT, 0666), fc = open(c, O_RDWR | O_CREAT, 0666);
    fchmod(fa, 0666); fchmod(fb, 0666); fchmod(fc, 0666);   /* also for a restore as another user */
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20};
    fcntl(fa, F_SETLK, &w);
    flock(fb, LOCK_SH);
    struct flock o = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    fcntl(fc, F_OFD_SETLK, &o);
    int ctl[2], up[2]; pipe(ctl); pipe(up);
    pid_t kid = fork();
    if (kid == 0) {
        int mine = open(a, O_RDONLY);
        struct flock r = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 0};
        fcntl(mine, F_SETLK, &r);
        write(up[1], "l", 1);
        char x; read(ctl[0], &x, 1);            /* across the checkpoint */
        _exit(0);
    }
    char x; read(up[0], &x, 1);
    char la[512], lb[512], lc[512], la2[512], lb2[512], lc2[512];
    lock_lines(fa, la, sizeof la); lock_lines(fb, lb, sizeof lb); lock_lines(fc, lc, sizeof lc);
    CHECK(la[0] && lb[0] && lc[0], "locks not taken");
    ready();

    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    lock_lines(fa, la2, sizeof la2); lock_lines(fb, lb2, sizeof lb2); lock_lines(fc, lc2, sizeof lc2);
    CHECK(!strcmp(la, la2), "POSIX lock\nbefore: %safter:  %s", la, la2);
    CHECK(!strcmp(lb, lb2), "flock\nbefore: %safter:  %s", lb, lb2);
    CHECK(!strcmp(lc, lc2), "OFD lock\nbefore: %safter:  %s", lc, lc2);
    /* A newcomer (another process) sees every lock with its owner. */
    int q[2]; pipe(q);
    pid_t probe = fork();
    if (probe == 0) {
        int r[4] = {holder(a, 15, 1, 0), holder(a, 150, 1, 0), holder(c, 0, 1, 1), 0};
        int fd = open(b, O_RDONLY);
        r[3] = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
        write(q[1], r, sizeof r);
        _exit(0);
    }
    int r[4]; read(q[0], r, sizeof r); waitpid(probe, NULL, 0);
    CHECK(r[0] == getpid(), "write lock held by %d, not %d", r[0], getpid());
    CHECK(r[1] == kid, "child's read lock held by %d, not %d", r[1], kid);
    CHECK(r[2] == -1, "description lock: %d", r[2]);
    CHECK(r[3] == 1, "flock not held");
    write(ctl[1], "g", 1);
    waitpid(kid, NULL, 0);
    CHECK(holder(a, 150, 1, 0) == 0, "the child's lock outlived it");
    finish();
    return failures != 0;
}
