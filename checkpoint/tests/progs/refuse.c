/* Holds descriptors the engine cannot save (socket, pipe, eventfd); waits in read(0). */
#include "common.h"
#include <sys/eventfd.h>
#include <sys/socket.h>
int main(void) {
    setup_stdout();
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int p[2]; pipe(p);
    int e = eventfd(0, 0);
    (void)s; (void)e;
    ready();
    char buf[16];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r == 3, "read returned %zd", r);
    finish();
    return failures != 0;
}
