/*
 * maploop - what one socket map request costs, client and server
 *
 * Sends N requests "transport <i>u@d<i % 10>.test" one after another on
 * one connection, as a Postfix process does, and prints the wall time
 * and its own CPU per request; with PID, also the CPU the server process
 * PID used meanwhile (/proc/PID/stat, user + system).  Against mxswitch
 * and against nullmap.c the same way, the difference is mxswitch's own
 * work per request.
 *
 * usage: maploop PORT|/unix/path N [PID]   (PORT on 127.0.0.1)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ticks - user + system clock ticks of process pid, or -1 */
static long
ticks(const char *pid)
{
    char path[64], buf[2048], *p;
    long u, s;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &u,
               &s) != 2)
        return -1;
    return u + s;
}

/* dial - a connection to 127.0.0.1:PORT or a unix socket path */
static int
dial(const char *to)
{
    int fd;

    if (to[0] == '/') {
        struct sockaddr_un a = {.sun_family = AF_UNIX};

        snprintf(a.sun_path, sizeof(a.sun_path), "%s", to);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET};

        a.sin_port = htons((unsigned short)atoi(to));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
    }
    perror("maploop: connect");
    exit(1);
}

int
main(int argc, char **argv)
{
    long n, i, t0 = -1, t1;
    struct timespec w0, w1;
    struct rusage ru;
    double wall, cpu;
    int fd;

    if (argc < 3 || (n = atol(argv[2])) <= 0) {
        fprintf(stderr, "usage: maploop PORT|/unix/path N [PID]\n");
        return 2;
    }
    fd = dial(argv[1]);
    if (argc > 3)
        t0 = ticks(argv[3]);
    clock_gettime(CLOCK_MONOTONIC, &w0);
    for (i = 0; i < n; i++) {
        char key[128], req[160], ans[1024];
        int len;

        snprintf(key, sizeof(key), "transport %ldu@d%ld.test", i, i % 10);
        len = snprintf(req, sizeof(req), "%zu:%s,", strlen(key), key);
        if (write(fd, req, (size_t)len) != len ||
            read(fd, ans, sizeof(ans)) <= 0) {
            fprintf(stderr, "maploop: request %ld: no answer\n", i);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &w1);
    getrusage(RUSAGE_SELF, &ru);
    wall = ((double)(w1.tv_sec - w0.tv_sec) * 1e9 +
            (double)(w1.tv_nsec - w0.tv_nsec)) /
           1e3 / (double)n;
    cpu = ((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)) /
          (double)n;
    printf("%ld requests: wall %.2f us, client CPU %.2f us", n, wall, cpu);
    if (t0 >= 0 && (t1 = ticks(argv[3])) >= 0)
        printf(", server CPU %.2f us", (double)(t1 - t0) * 1e6 /
                                           (double)sysconf(_SC_CLK_TCK) /
                                           (double)n);
    printf(" per request\n");
    return 0;
}
