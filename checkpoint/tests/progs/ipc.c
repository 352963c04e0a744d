/* System V and POSIX shared memory, semaphores and message queues in a pod across a
 * checkpoint. SysV: a keyed 1 MiB segment attached by a parent and its child, a private one
 * attached read-only by the child only, one marked for removal while attached, one not
 * attached at all; a semaphore set; a message queue. POSIX: a shm_open object mapped by
 * both, and a named semaphore. After "go": same ids, keys, modes, sizes and contents; the
 * attachments still shared; the removed segment goes away once detached. */
#include "common.h"
#include <semaphore.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define BIG (1 << 20)
static unsigned char pat(size_t i) { return (unsigned char)(i * 13 + 5); }

struct msg { long type; char text[32]; };

int main(void) {
    setup_stdout();
    int keyed = shmget(0x5a05, BIG, IPC_CREAT | 0640);
    int priv = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    int doomed = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    int alone = shmget(0x5a06, 3 * 4096, IPC_CREAT | 0644);
    unsigned char *k = shmat(keyed, NULL, 0);
    for (size_t i = 0; i < BIG; i += 4096) k[i] = pat(i);
    unsigned char *p = shmat(priv, NULL, 0);
    memcpy(p, "private", 8);
    shmdt(p);
    unsigned char *d = shmat(doomed, NULL, 0);
    memcpy(d, "doomed", 7);
    shmctl(doomed, IPC_RMID, NULL);
    unsigned char *a = shmat(alone, NULL, 0);
    memcpy(a + 4096, "alone", 6);
    shmdt(a);
    int sem = semget(0x5a07, 3, IPC_CREAT | 0600);
    unsigned short vals[3] = {1, 5, 9};
    semctl(sem, 0, SETALL, vals);
    int q = msgget(0x5a08, IPC_CREAT | 0620);
    struct msg m1 = {1, "first"}, m2 = {2, "second"}, m3 = {1, "third"};
    msgsnd(q, &m1, 6, 0); msgsnd(q, &m2, 7, 0); msgsnd(q, &m3, 6, 0);
    int po = shm_open("/zos-posix", O_CREAT | O_RDWR, 0600);
    ftruncate(po, 8192);
    char *pm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, po, 0);
    strcpy(pm + 4096, "posix");
    sem_t *ns = sem_open("/zos-sem", O_CREAT, 0600, 2);
    int ctl[2], up[2]; pipe(ctl); pipe(up);
    pid_t kid = fork();
    if (kid == 0) {
        unsigned char *cp = shmat(priv, NULL, SHM_RDONLY);
        int ok = !memcmp(cp, "private", 8);
        write(up[1], "r", 1);
        char x; read(ctl[0], &x, 1);        /* across the checkpoint */
        ok &= !memcmp(cp, "private", 8);
        k[7] = 0x77; pm[1] = 'z'; d[1] = 'X';
        shmdt(cp); shmdt(d);
        _exit(ok ? 0 : 1);
    }
    char x; read(up[0], &x, 1);
    struct shmid_ds ds0; shmctl(keyed, IPC_STAT, &ds0);
    ready();

    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    CHECK(shmget(0x5a05, 0, 0) == keyed && shmget(0x5a06, 0, 0) == alone, "keys lead to other ids");
    struct shmid_ds ds; shmctl(keyed, IPC_STAT, &ds);
    CHECK(ds.shm_segsz == BIG && (ds.shm_perm.mode & 0777) == 0640 && ds.shm_nattch == ds0.shm_nattch, "keyed segment: size %zu mode %o nattch %lu/%lu", ds.shm_segsz, ds.shm_perm.mode, (unsigned long)ds.shm_nattch, (unsigned long)ds0.shm_nattch);
    int same = 1;
    for (size_t i = 0; i < BIG; i += 4096) if (k[i] != pat(i)) same = 0;
    CHECK(same, "keyed segment content");
    shmctl(doomed, IPC_STAT, &ds);
    CHECK(ds.shm_perm.mode & SHM_DEST, "the removed segment is not marked for removal any more");
    CHECK(!memcmp(d, "doomed", 7), "the removed segment's content");
    a = shmat(alone, NULL, SHM_RDONLY);
    CHECK(a != (void *)-1 && !memcmp(a + 4096, "alone", 6), "unattached segment");
    unsigned short v[3] = {0};
    int gr = semctl(sem, 0, GETALL, v);
    CHECK(semget(0x5a07, 0, 0) == sem && gr == 0 && v[0] == 1 && v[1] == 5 && v[2] == 9, "semaphores %d %d %d (id %d, was %d; GETALL %d: %s)", v[0], v[1], v[2], semget(0x5a07, 0, 0), sem, gr, strerror(errno));
    struct msg r;
    CHECK(msgget(0x5a08, 0) == q, "queue id");
    CHECK(msgrcv(q, &r, sizeof r.text, 2, IPC_NOWAIT) == 7 && !strcmp(r.text, "second"), "message of type 2");
    CHECK(msgrcv(q, &r, sizeof r.text, 0, IPC_NOWAIT) == 6 && !strcmp(r.text, "first"), "first message");
    CHECK(msgrcv(q, &r, sizeof r.text, 0, IPC_NOWAIT) == 6 && !strcmp(r.text, "third"), "third message");
    CHECK(!strcmp(pm + 4096, "posix"), "POSIX shm content");
    struct stat st; fstat(po, &st);
    CHECK(st.st_size == 8192 && (st.st_mode & 0777) == 0600, "POSIX shm size/mode");
    CHECK(sem_trywait(ns) == 0 && sem_trywait(ns) == 0 && sem_trywait(ns) < 0, "named semaphore value");
    write(ctl[1], "g", 1);
    int status; waitpid(kid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
    CHECK(k[7] == 0x77 && pm[1] == 'z' && d[1] == 'X', "the child's writes are not shared");
    shmdt(d);
    CHECK(shmctl(doomed, IPC_STAT, &ds) < 0, "the removed segment stays after its last detach");
    int again = shm_open("/zos-posix", O_RDONLY, 0);
    CHECK(again >= 0, "POSIX shm by name");
    finish();
    return failures != 0;
}
