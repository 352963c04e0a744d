/* A FIFO with unread bytes: opens DIR/fifo for reading and writing (two descriptions), writes
 * 50000 patterned bytes, waits for "go", then reads them back and checks every byte. */
#include "common.h"
#include <sys/stat.h>
int main(int argc, char **argv) {
    char path[4096];
    snprintf(path, sizeof path, "%s/fifo", argv[1]);
    unlink(path);
    if (mkfifo(path, 0600)) return 2;
    int r = open(path, O_RDONLY | O_NONBLOCK);
    int w = open(path, O_WRONLY);
    if (r < 0 || w < 0) return 3;
    fcntl(r, F_SETFL, 0); /* blocking reads from now on */
    static unsigned char data[50000];
    for (int i = 0; i < (int)sizeof data; i++) data[i] = (unsigned char)(i * 7 + 3);
    if (write(w, data, sizeof data) != (ssize_t)sizeof data) return 4;
    printf("READY\n"); fflush(stdout);
    char go[16];
    if (read(0, go, sizeof go) <= 0) return 5;
    static unsigned char back[50000];
    size_t got = 0;
    while (got < sizeof back) {
        ssize_t n = read(r, back + got, sizeof back - got);
        if (n <= 0) break;
        got += n;
    }
    int ok = got == sizeof data && memcmp(data, back, got) == 0;
    printf("%s got=%zu\n", ok ? "PASS" : "FAIL", got); fflush(stdout);
    unlink(path);
    return ok ? 0 : 1;
}
