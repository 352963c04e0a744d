/* A foreign tracer: PTRACE_SEIZEs argv[1] and holds it until killed. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    if (ptrace(PTRACE_SEIZE, atoi(argv[1]), 0, 0)) { perror("seize"); return 1; }
    printf("TRACING\n"); fflush(stdout);
    for (;;) pause();
}
