/* nanosleep(3 s) that is checkpointed part-way: after restore it must sleep only for the
 * remaining time and return 0 (not EINTR, not restart from the beginning). */
#include "common.h"
#include <time.h>
int main(void) {
    setup_stdout();
    ready();
    struct timespec req = {3, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    printf("DONE r=%d errno=%d\n", r, r ? errno : 0);
    fflush(stdout);
    return r != 0;
}
