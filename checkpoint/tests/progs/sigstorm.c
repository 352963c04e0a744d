/* Counts SIGUSR1 (SA_RESTART handler) while blocked in read(0); prints PASS when "go" comes. */
#include "common.h"
#include <signal.h>
static volatile long count;
static void on_usr1(int s) { (void)s; count++; }
int main(void) {
    setup_stdout();
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    ready();
    char buf[16];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r == 3 && !memcmp(buf, "go\n", 3), "read returned %zd", r);
    printf("signals %ld\n", count);
    finish();
    return failures != 0;
}
