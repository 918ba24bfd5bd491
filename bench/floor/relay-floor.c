/*
 * relay-floor.c: the least any proxy can do, for bench scenario 6 ("WebSocket echo through
 * the proxy").
 *
 * A single-threaded epoll TCP relay: for each client accepted on 127.0.0.1:<listen_port> it
 * opens one connection to 127.0.0.1:<origin_port> and copies bytes both ways. No HTTP, no
 * WebSocket parsing, no routing: whatever a real proxy does costs more than this, so the
 * echo rate through it is the ceiling a proxy can reach on this machine, and its CPU time per
 * message is the floor of a proxy's cost.
 *
 *   gcc -O2 -Wall -o /tmp/relay-floor bench/floor/relay-floor.c
 *   /tmp/relay-floor <listen_port, 0 for any> <origin_port>
 *
 * Prints its listening port on stdout as one line, then relays until SIGTERM or SIGINT, then
 * prints one JSON line: {"cpuMs", "userMs", "sysMs", "bytesToOrigin", "bytesToClient",
 * "connections", "originFailures"} and exits.
 *
 * The invariant: each direction has one small buffer, and a side is read only while the
 * buffer of the direction it feeds is empty. A slow receiver therefore stops its sender
 * (through the kernel's socket buffers) instead of growing memory here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Per direction. A WebSocket echo message is ~70 bytes; 16 KiB takes any burst in one read. */
#define DIRECTION_BUFFER_BYTES 16384
/* Events taken per epoll_wait. */
#define EVENT_BATCH 256

/* Bytes flowing one way; pending data is buffer[start, end). Empty when start == end. */
struct direction {
    uint32_t start;
    uint32_t end;
    char buffer[DIRECTION_BUFFER_BYTES];
};

struct pair;

/* One socket of a pair, as registered with epoll (data.ptr points here). */
struct endpoint {
    struct pair *pair;
    int fd;
    uint32_t interest; /* the events currently registered */
    struct direction *inbound;  /* filled by reading this socket */
    struct direction *outbound; /* drained by writing this socket */
    struct endpoint *peer;
    uint64_t *bytes_written; /* the counter of bytes delivered to this socket */
};

struct pair {
    struct endpoint client;
    struct endpoint origin;
    struct direction to_origin;
    struct direction to_client;
    bool origin_connected;
    bool closed;
    struct pair *next_closed; /* freed after the event batch, which may still name it */
};

static volatile sig_atomic_t stop_requested = 0;
static int epoll_fd;
static struct sockaddr_in origin_address;
static uint64_t bytes_to_origin = 0;
static uint64_t bytes_to_client = 0;
static uint64_t connections = 0;
static uint64_t origin_failures = 0;
static struct pair *closed_pairs = NULL;

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static int parse_port(const char *text)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 0 || value > 65535) {
        fprintf(stderr, "usage: relay-floor <listen_port, 0 for any> <origin_port>\n");
        exit(64);
    }
    return (int)value;
}

static void close_pair(struct pair *pair)
{
    if (pair->closed) return;
    pair->closed = true;
    /* Closing removes the sockets from epoll; the struct lives until the batch is done. */
    close(pair->client.fd);
    close(pair->origin.fd);
    pair->next_closed = closed_pairs;
    closed_pairs = pair;
}

/* Registers the events the endpoint's state calls for, if they changed. */
static void update_interest(struct endpoint *endpoint)
{
    struct pair *pair = endpoint->pair;
    uint32_t wanted = 0;
    bool is_origin = endpoint == &pair->origin;
    if (!pair->origin_connected) {
        /* Until the origin answers, read nothing; connect completion shows as EPOLLOUT. */
        if (is_origin) wanted = EPOLLOUT;
    } else {
        if (endpoint->inbound->start == endpoint->inbound->end) wanted |= EPOLLIN;
        if (endpoint->outbound->start != endpoint->outbound->end) wanted |= EPOLLOUT;
    }
    if (wanted == endpoint->interest) return;
    struct epoll_event event = {.events = wanted, .data.ptr = endpoint};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, endpoint->fd, &event) != 0) fail("epoll_ctl MOD");
    endpoint->interest = wanted;
}

/* Writes `to`'s pending outbound bytes. Returns false when the socket failed. */
static bool flush(struct endpoint *to)
{
    struct direction *direction = to->outbound;
    while (direction->start < direction->end) {
        ssize_t written = write(to->fd, direction->buffer + direction->start, direction->end - direction->start);
        if (written < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN; /* the rest waits for EPOLLOUT */
        }
        direction->start += (uint32_t)written;
        *to->bytes_written += (uint64_t)written;
    }
    direction->start = direction->end = 0;
    return true;
}

/* One read from `from` into its (empty) inbound buffer, then straight on to the peer. */
static bool relay_from(struct endpoint *from)
{
    struct direction *direction = from->inbound;
    ssize_t got = read(from->fd, direction->buffer, DIRECTION_BUFFER_BYTES);
    if (got == 0) return false; /* the peer closed: close both sides */
    if (got < 0) return errno == EAGAIN || errno == EINTR;
    direction->start = 0;
    direction->end = (uint32_t)got;
    return flush(from->peer);
}

static void handle_event(struct endpoint *endpoint, uint32_t events)
{
    struct pair *pair = endpoint->pair;
    if (pair->closed) return;
    /* Either side reset or hung up: the least a proxy does is to end both. */
    if (events & (EPOLLERR | EPOLLHUP)) {
        if (endpoint == &pair->origin && !pair->origin_connected) origin_failures++;
        close_pair(pair);
        return;
    }
    if (endpoint == &pair->origin && !pair->origin_connected) {
        int error = 0;
        socklen_t length = sizeof error;
        if (getsockopt(endpoint->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
            origin_failures++;
            close_pair(pair);
            return;
        }
        pair->origin_connected = true;
    } else {
        if ((events & EPOLLOUT) && !flush(endpoint)) {
            close_pair(pair);
            return;
        }
        if ((events & EPOLLIN) && endpoint->inbound->start == endpoint->inbound->end && !relay_from(endpoint)) {
            close_pair(pair);
            return;
        }
    }
    update_interest(&pair->client);
    update_interest(&pair->origin);
}

static void register_endpoint(struct endpoint *endpoint, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.ptr = endpoint};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, endpoint->fd, &event) != 0) fail("epoll_ctl ADD");
    endpoint->interest = events;
}

static void accept_clients(int listener)
{
    int one = 1;
    for (;;) {
        int client_fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client_fd < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == ECONNABORTED) return;
            fail("accept4");
        }
        int origin_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct pair *pair = origin_fd < 0 ? NULL : calloc(1, sizeof *pair);
        if (pair == NULL) {
            /* Out of descriptors or memory: refuse this client, keep serving the others. */
            if (origin_fd >= 0) close(origin_fd);
            close(client_fd);
            origin_failures++;
            continue;
        }
        connections++;
        /* Small messages must leave at once, as in any interactive proxy. */
        setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(origin_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pair->client = (struct endpoint){pair, client_fd, 0, &pair->to_origin, &pair->to_client, &pair->origin, &bytes_to_client};
        pair->origin = (struct endpoint){pair, origin_fd, 0, &pair->to_client, &pair->to_origin, &pair->client, &bytes_to_origin};
        int connected = connect(origin_fd, (struct sockaddr *)&origin_address, sizeof origin_address);
        if (connected != 0 && errno != EINPROGRESS) {
            origin_failures++;
            close(client_fd);
            close(origin_fd);
            free(pair);
            continue;
        }
        pair->origin_connected = connected == 0;
        /* The client is registered with no events at first: a reset still shows as EPOLLHUP. */
        register_endpoint(&pair->client, pair->origin_connected ? EPOLLIN : 0);
        register_endpoint(&pair->origin, pair->origin_connected ? EPOLLIN : EPOLLOUT);
    }
}

static double ms_of(struct timeval time)
{
    return (double)time.tv_sec * 1000.0 + (double)time.tv_usec / 1000.0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: relay-floor <listen_port, 0 for any> <origin_port>\n");
        return 64;
    }
    int listen_port = parse_port(argv[1]);
    origin_address = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)parse_port(argv[2])),
                                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

    /*
     * The stop signals stay blocked except inside epoll_pwait, so a signal can never slip in
     * between checking the flag and going to sleep.
     */
    sigset_t stop_signals, while_waiting;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, &while_waiting);
    sigdelset(&while_waiting, SIGTERM);
    sigdelset(&while_waiting, SIGINT);
    struct sigaction on_stop = {.sa_handler = on_stop_signal};
    sigaction(SIGTERM, &on_stop, NULL);
    sigaction(SIGINT, &on_stop, NULL);
    /* A client that vanishes while we write must not kill the relay. */
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0) fail("socket");
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t address_length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0) fail("bind");
    if (listen(listener, SOMAXCONN) != 0) fail("listen");
    if (getsockname(listener, (struct sockaddr *)&address, &address_length) != 0) fail("getsockname");

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) fail("epoll_create1");
    /* data.ptr NULL marks the listener. */
    struct epoll_event listen_event = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &listen_event) != 0) fail("epoll_ctl listener");

    printf("%d\n", ntohs(address.sin_port));
    fflush(stdout);

    struct epoll_event events[EVENT_BATCH];
    while (!stop_requested) {
        int ready = epoll_pwait(epoll_fd, events, EVENT_BATCH, -1, &while_waiting);
        if (ready < 0) {
            if (errno == EINTR) continue;
            fail("epoll_pwait");
        }
        for (int i = 0; i < ready; i++) {
            if (events[i].data.ptr == NULL)
                accept_clients(listener);
            else
                handle_event(events[i].data.ptr, events[i].events);
        }
        while (closed_pairs != NULL) {
            struct pair *next = closed_pairs->next_closed;
            free(closed_pairs);
            closed_pairs = next;
        }
    }

    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("{\"cpuMs\":%.3f,\"userMs\":%.3f,\"sysMs\":%.3f,\"bytesToOrigin\":%llu,\"bytesToClient\":%llu,"
           "\"connections\":%llu,\"originFailures\":%llu}\n",
           ms_of(usage.ru_utime) + ms_of(usage.ru_stime), ms_of(usage.ru_utime), ms_of(usage.ru_stime),
           (unsigned long long)bytes_to_origin, (unsigned long long)bytes_to_client, (unsigned long long)connections,
           (unsigned long long)origin_failures);
    return 0;
}
