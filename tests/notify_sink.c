/*
 * notify_sink - play systemd's side of sd_notify for a test
 *
 * usage: notify_sink SOCKET OUTFILE
 *
 * Binds a unix datagram socket at SOCKET (a path; give the daemon
 * NOTIFY_SOCKET=SOCKET) and appends each datagram to OUTFILE as one line,
 * its newlines shown as spaces, flushed at once.  Runs until killed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    struct sockaddr_un sun;
    char buf[4096];
    FILE *out;
    ssize_t n, i;
    int fd;

    if (argc != 3 || strlen(argv[1]) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "usage: notify_sink SOCKET OUTFILE\n");
        return 1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, argv[1]);
    unlink(argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        perror(argv[1]);
        return 1;
    }
    if ((out = fopen(argv[2], "a")) == NULL) {
        perror(argv[2]);
        return 1;
    }
    while ((n = recv(fd, buf, sizeof(buf), 0)) >= 0) {
        for (i = 0; i < n; i++)
            if (buf[i] == '\n')
                buf[i] = ' ';
        fprintf(out, "%.*s\n", (int)n, buf);
        fflush(out);
    }
    perror("recv");
    return 1;
}
