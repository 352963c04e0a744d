/* Capabilities of each thread across a checkpoint: the main thread with a bounding set
 * lacking CAP_NET_RAW, an effective set lacking CAP_CHOWN, inheritable and ambient
 * CAP_NET_BIND_SERVICE; a second thread keeping only CAP_KILL; a child with none. (Run as
 * root inside the pod.) After "go" every Cap* line of every thread reads as before. */
#include "common.h"
#include <linux/capability.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static uint64_t permitted(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    return d[0].permitted | (uint64_t)d[1].permitted << 32;
}

static int set_caps(uint64_t eff, uint64_t prm, uint64_t inh) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
    return syscall(SYS_capset, &h, d);
}

/* The Cap* lines of thread tid of this process. */
static void caps_of(pid_t tid, char *out, size_t cap) {
    char path[64], buf[4096]; size_t n;
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    slurp_into(path, buf, sizeof buf, &n);
    out[0] = 0;
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
        if (!strncmp(l, "Cap", 3)) { strncat(out, l, cap - strlen(out) - 2); strcat(out, "\n"); }
}

static volatile pid_t helper_tid;
static void *helper(void *a) {
    (void)a;
    set_caps(1ULL << CAP_KILL, 1ULL << CAP_KILL, 0);
    helper_tid = gettid();
    for (;;) pause();
    return NULL;
}

int main(void) {
    setup_stdout();
    uint64_t all = permitted();
    int ctl[2], up[2]; pipe(ctl); pipe(up);
    pid_t kid = fork();
    if (kid == 0) {
        set_caps(0, 0, 0);
        char before[1024], after[1024];
        caps_of(getpid(), before, sizeof before);
        write(up[1], "r", 1);
        char x; read(ctl[0], &x, 1);        /* across the checkpoint */
        caps_of(getpid(), after, sizeof after);
        int same = !strcmp(before, after);
        if (!same) printf("CHILD caps\nbefore:\n%safter:\n%s", before, after);
        fflush(stdout);
        _exit(same ? 0 : 1);
    }
    char x; read(up[0], &x, 1);
    prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0);
    uint64_t inh = (1ULL << CAP_KILL) | (1ULL << CAP_NET_BIND_SERVICE);
    CHECK(set_caps(all & ~(1ULL << CAP_CHOWN), all, inh) == 0, "capset: %s", strerror(errno));
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == 0, "ambient: %s", strerror(errno));
    pthread_t th; pthread_create(&th, NULL, helper, NULL);
    while (!helper_tid) usleep(1000);
    char main_before[1024], helper_before[1024], main_after[1024], helper_after[1024];
    caps_of(getpid(), main_before, sizeof main_before);
    caps_of(helper_tid, helper_before, sizeof helper_before);
    ready();

    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    caps_of(getpid(), main_after, sizeof main_after);
    caps_of(helper_tid, helper_after, sizeof helper_after);
    CHECK(!strcmp(main_before, main_after), "main thread\nbefore:\n%safter:\n%s", main_before, main_after);
    CHECK(!strcmp(helper_before, helper_after), "second thread\nbefore:\n%safter:\n%s", helper_before, helper_after);
    write(ctl[1], "g", 1);
    int st; waitpid(kid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child's capabilities changed");
    finish();
    return failures != 0;
}
