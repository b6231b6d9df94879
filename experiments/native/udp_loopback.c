/*
 * Linux's own kernel-mediated path, for the NetD table (experiments/netd_table.py): UDP
 * datagrams over the loopback interface, one thread, two sockets. Each packet is one
 * sendto() and one recv() system call, the kernel copying the payload in and out.
 *
 *   udp_loopback SIZE ITERS   -> one JSON line: ns per packet (median of 9 rounds)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int size = argc > 1 ? atoi(argv[1]) : 64;
    long iters = argc > 2 ? atol(argv[2]) : 20000;
    if (size < 1 || size > 1472 || iters < 1) {
        fprintf(stderr, "usage: udp_loopback SIZE(1..1472) ITERS\n");
        return 2;
    }
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sb = { .sin_family = AF_INET, .sin_port = 0 };
    sb.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sb);
    if (a < 0 || b < 0 || bind(b, (struct sockaddr *)&sb, sizeof(sb)) != 0 ||
        getsockname(b, (struct sockaddr *)&sb, &len) != 0) {
        perror("udp_loopback: socket");
        return 1;
    }
    static char buf[2048], in[2048];
    memset(buf, 0x5a, sizeof(buf));
    double rounds[9];
    for (int r = 0; r < 9; r++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            if (sendto(a, buf, (size_t)size, 0, (struct sockaddr *)&sb, sizeof(sb)) != size ||
                recv(b, in, sizeof(in), 0) != size) {
                perror("udp_loopback: send/recv");
                return 1;
            }
        }
        rounds[r] = (now_ns() - t0) / (double)iters;
    }
    qsort(rounds, 9, sizeof(double), cmp);
    printf("{\"size\": %d, \"iters\": %ld, \"ns_per_packet\": %.1f, \"ns_min\": %.1f, "
           "\"syscalls_per_packet\": 2}\n", size, iters, rounds[4], rounds[0]);
    return 0;
}
