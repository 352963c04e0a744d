/* Holds a file deleted while open: DIR/ghost.txt, mode 0645, owned by uid/gid OWNER.
 * Usage: deleted DIR OWNER. Waits in read(0), then prints what its descriptor looks like. */
#include "common.h"
#include <sys/stat.h>
int main(int argc, char **argv) {
    (void)argc;
    setup_stdout();
    char path[600], link[700] = {0}, proc[64], buf[32] = {0};
    int owner = atoi(argv[2]);
    snprintf(path, sizeof path, "%s/ghost.txt", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0, "create %s", path);
    CHECK(write(fd, "boo", 3) == 3, "write");
    fchmod(fd, 0645);
    fchown(fd, owner, owner);
    unlink(path);
    if (owner) { setresgid(owner, owner, owner); setresuid(owner, owner, owner); }
    ready();
    char in[16];
    CHECK(read(0, in, sizeof in) == 3, "read");
    struct stat st;
    fstat(fd, &st);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    readlink(proc, link, sizeof link - 1);
    pread(fd, buf, sizeof buf - 1, 0);
    printf("LINK %s\nMODE %o\nOWNER %d:%d\nCONTENT %s\n", link, st.st_mode & 07777, st.st_uid, st.st_gid, buf);
    finish();
    return failures != 0;
}
