/*
 * nullmap - the benchmark's baseline socket map server: it answers what
 * mxswitch answers for the Postfix bench's addresses, with no work at all
 *
 * A key whose domain is one of the bench's (d<digits>.test) is found:
 * map "transport" answers "OK TRANSPORT", map "valias" the key itself;
 * every other key (the senders, "*") and map is NOTFOUND.  One thread
 * per connection, a blocking read, one write per answer: the least a
 * socket map server can do per request.  What Postfix with nullmap costs
 * against Postfix without tables is the price of asking any table server;
 * what mxswitch costs against nullmap is mxswitch's own.
 *
 * usage: nullmap PORT TRANSPORT   (listens on 127.0.0.1:PORT); runs in
 * the foreground until killed.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *transport;

/* ours - whether key is an address at a bench domain, d<digits>.test */
static int
ours(const char *key)
{
    const char *at = strrchr(key, '@');
    size_t n;

    if (at == NULL || at[1] != 'd')
        return 0;
    n = strspn(at + 2, "0123456789");
    return n > 0 && strcmp(at + 2 + n, ".test") == 0;
}

/* reply - the framed answer to one request "map key" */
static int
reply(char *req, char *out, size_t outlen)
{
    char *key = strchr(req, ' ');
    const char *ans = "NOTFOUND ";
    char buf[1200];

    if (key != NULL) {
        *key++ = '\0';
        if (ours(key) && strcmp(req, "transport") == 0) {
            snprintf(buf, sizeof(buf), "OK %s", transport);
            ans = buf;
        } else if (ours(key) && strcmp(req, "valias") == 0) {
            snprintf(buf, sizeof(buf), "OK %s", key);
            ans = buf;
        }
    }
    return snprintf(out, outlen, "%zu:%s,", strlen(ans), ans);
}

/* serve - one connection: answer each complete netstring */
static void *
serve(void *arg)
{
    int fd = (int)(long)arg;
    char in[8192], out[1300];
    size_t have = 0;
    ssize_t n;

    while ((n = read(fd, in + have, sizeof(in) - 1 - have)) > 0) {
        char *colon;

        have += (size_t)n;
        while (have > 0 && (colon = memchr(in, ':', have)) != NULL) {
            size_t len = strtoul(in, NULL, 10), hl = (size_t)(colon - in) + 1;
            int m;

            if (hl + len + 1 > have)
                break;
            colon[1 + len] = '\0';
            m = reply(colon + 1, out, sizeof(out));
            if (write(fd, out, (size_t)m) != m)
                goto done;
            memmove(in, in + hl + len + 1, have - hl - len - 1);
            have -= hl + len + 1;
        }
        if (have == sizeof(in) - 1)
            break;
    }
done:
    close(fd);
    return NULL;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa;
    int one = 1, lfd;

    if (argc != 3) {
        fprintf(stderr, "usage: nullmap PORT TRANSPORT\n");
        return 2;
    }
    transport = argv[2];
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(lfd, 128) != 0) {
        perror("nullmap: listen");
        return 1;
    }
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        pthread_t t;

        if (fd < 0)
            continue;
        if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0)
            close(fd);
        else
            pthread_detach(t);
    }
}
