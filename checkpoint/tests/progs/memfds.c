/* memfds across a checkpoint: one with a descriptor (name, sparse content, seals, mode,
 * offset, a second read-only description of it) mapped shared by a parent and its child, and
 * one only mapped (its descriptor closed). After "go": content and metadata as before, and
 * the mappings and descriptors still one file shared by both processes. */
#include "common.h"
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define BIG (1 << 20)
#define SMALL (64 << 10)

static unsigned char pat(size_t i) { return (unsigned char)(i * 7 + 3); }

int main(void) {
    setup_stdout();
    int m1 = memfd_create("zos-m1", MFD_ALLOW_SEALING);
    ftruncate(m1, BIG);
    unsigned char buf[3 * 4096];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = pat(i);
    pwrite(m1, buf, sizeof buf, 0);
    pwrite(m1, "tail", 4, BIG / 2);
    fchmod(m1, 0640);
    fcntl(m1, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    lseek(m1, 12345, SEEK_SET);
    unsigned char *map1 = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_SHARED, m1, 0);
    char again[64]; snprintf(again, sizeof again, "/proc/self/fd/%d", m1);
    int m1ro = open(again, O_RDONLY);
    int m2 = memfd_create("zos-only-mapped", 0);
    ftruncate(m2, SMALL);
    unsigned char *map2 = mmap(NULL, SMALL, PROT_READ | PROT_WRITE, MAP_SHARED, m2, 0);
    for (size_t i = 0; i < SMALL; i += 4096) map2[i] = (unsigned char)(i / 4096 + 1);
    close(m2);
    int ctl[2]; pipe(ctl);
    pid_t c = fork();
    if (c == 0) {
        char b; read(ctl[0], &b, 1);          /* across the checkpoint */
        map1[100] = 0xAB; map1[BIG - 1] = 0xCD;
        map2[5] = 0xEF;
        _exit(0);
    }
    struct stat st1; fstat(m1, &st1);
    ready();

    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    char link[128] = {0};
    readlink(again, link, sizeof link - 1);
    CHECK(!strcmp(link, "/memfd:zos-m1 (deleted)"), "name: %s", link);
    struct stat st; fstat(m1, &st);
    CHECK(st.st_size == BIG && (st.st_mode & 07777) == 0640, "size %ld mode %o", (long)st.st_size, st.st_mode & 07777);
    CHECK(st.st_uid == getuid() && fchmod(m1, 0640) == 0, "owner %d, not %d", st.st_uid, getuid());
    CHECK(fcntl(m1, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "seals %x", fcntl(m1, F_GET_SEALS));
    CHECK(lseek(m1, 0, SEEK_CUR) == 12345, "offset");
    unsigned char got[3 * 4096];
    pread(m1, got, sizeof got, 0);
    CHECK(!memcmp(got, buf, sizeof got), "content of the first pages");
    CHECK(!memcmp(map1 + BIG / 2, "tail", 4), "content in the middle");
    int zeros = 1;
    for (size_t i = sizeof buf; i < BIG / 2; i++) if (map1[i]) { zeros = 0; break; }
    CHECK(zeros, "hole not zero");
    struct stat str; fstat(m1ro, &str);
    CHECK(str.st_ino == st.st_ino && (fcntl(m1ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "second description");
    for (size_t i = 0; i < SMALL; i += 4096) CHECK(map2[i] == (unsigned char)(i / 4096 + 1), "mapped-only page %zu", i / 4096);
    write(ctl[1], "g", 1);
    int status; waitpid(c, &status, 0);
    unsigned char b1 = 0, b2 = 0;
    pread(m1, &b1, 1, 100); pread(m1ro, &b2, 1, BIG - 1);
    CHECK(map1[100] == 0xAB && b1 == 0xAB && b2 == 0xCD, "child's writes through the mapping: %x %x %x", map1[100], b1, b2);
    CHECK(map2[5] == 0xEF, "child's write to the mapped-only memfd");
    finish();
    return failures != 0;
}
