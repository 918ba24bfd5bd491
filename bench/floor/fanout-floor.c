/*
 * fanout-floor.c: the machine's floor for bench scenario 2 ("fan-out latency").
 *
 * Scenario 2 holds 10 000 HTTP streams on one channel and sends 20 publishes, each once the
 * previous one has reached every subscriber; latency is arrival time at a subscriber minus
 * the publish stamp. This program keeps only what no server can avoid: one process that
 * takes a CLOCK_MONOTONIC stamp and write()s one small message to each of its sockets in a
 * single loop, and subscriber processes that read with epoll and subtract on arrival. No
 * HTTP, no JSON, no publish API, no allocation per message.
 *
 *   gcc -O2 -Wall -o /tmp/fanout-floor bench/floor/fanout-floor.c
 *   /tmp/fanout-floor [connections=10000] [rounds=20] [reader_processes=2]
 *
 * The parent listens on 127.0.0.1 (an ephemeral port), forks the readers, accepts every
 * connection, then runs the rounds. Readers report over one pipe each (parent <- reader):
 * READY once their connections are open, ROUND_DONE when every one of their connections got
 * a round, and at the end their latencies and CPU time. Everything stays on loopback; the
 * readers close with RST (SO_LINGER 0), so a run leaves no TIME_WAIT sockets behind; a
 * watchdog bounds the run and the readers die with the parent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The bench's publish content, "<seq> <stampUs>\n", framed as an HTTP chunk, is 22-24 bytes. */
#define MESSAGE_BYTES 24
/* The bench pauses this long between publishes so each one meets an idle server. */
#define ROUND_GAP_MS 100
/* A round that has not reached everyone by then is a failure, not a slow sample. */
#define ROUND_TIMEOUT_MS 10000
/* The whole run must end well within 30 s; at the default sizes it takes about 3 s. */
#define WATCHDOG_SECONDS 28
/* Descriptors beyond the sockets: stdio, the listener, the pipes, epoll. */
#define FD_HEADROOM 64
/* The bench's scenario. */
#define DEFAULT_CONNECTIONS 10000
#define DEFAULT_ROUNDS 20
#define DEFAULT_READERS 2
#define MAX_READERS 64
/* Events taken per epoll_wait in a reader. */
#define EVENT_BATCH 512

/* Reader -> parent reports: 8 bytes each, so a pipe write is atomic (< PIPE_BUF). */
enum report_kind { REPORT_READY = 1, REPORT_ROUND_DONE = 2, REPORT_RESULTS = 3 };
struct report {
    uint32_t kind;
    uint32_t value; /* ROUND_DONE: the round (1-based); RESULTS: how many latencies follow */
};
/* Follows a RESULTS report, then `value` uint32 latencies in µs (connection-major). */
struct reader_summary {
    uint64_t cpu_us_during_rounds;
};

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static uint64_t monotonic_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

static uint64_t us_of(struct timeval time)
{
    return (uint64_t)time.tv_sec * 1000000u + (uint64_t)time.tv_usec;
}

/* This process's user + system CPU time; the system part alone in *system_us if asked. */
static uint64_t cpu_us_self(uint64_t *system_us)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    if (system_us != NULL) *system_us = us_of(usage.ru_stime);
    return us_of(usage.ru_utime) + us_of(usage.ru_stime);
}

static void sleep_ms(long ms)
{
    struct timespec gap = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&gap, &gap) != 0 && errno == EINTR) {
    }
}

static void write_all(int fd, const void *data, size_t length)
{
    const char *bytes = data;
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written < 0) {
            if (errno == EINTR) continue;
            fail("write to pipe");
        }
        bytes += written;
        length -= (size_t)written;
    }
}

/* Returns 0 on end of file before `length` bytes (a reader died). */
static int read_all(int fd, void *data, size_t length)
{
    char *bytes = data;
    while (length > 0) {
        ssize_t got = read(fd, bytes, length);
        if (got < 0) {
            if (errno == EINTR) continue;
            fail("read from pipe");
        }
        if (got == 0) return 0;
        bytes += got;
        length -= (size_t)got;
    }
    return 1;
}

static void on_watchdog(int signal_number)
{
    (void)signal_number;
    static const char message[] = "fanout-floor: watchdog fired, giving up\n";
    ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
    (void)ignored;
    _exit(2); /* the readers get SIGKILL through PR_SET_PDEATHSIG */
}

static void raise_fd_limit(long needed)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) fail("getrlimit");
    if ((long)limit.rlim_cur >= needed) return;
    if (limit.rlim_max != RLIM_INFINITY && (long)limit.rlim_max < needed) {
        fprintf(stderr, "fanout-floor: need %ld open files, the hard limit is %ld\n", needed, (long)limit.rlim_max);
        exit(1);
    }
    limit.rlim_cur = (rlim_t)needed;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) fail("setrlimit");
}

/* ---------------------------------------------------------------- reader process */

struct reader_connection {
    int fd;
    uint32_t pending_length; /* bytes of an unfinished line (a message split across reads) */
    char pending[MESSAGE_BYTES * 2];
};

/*
 * Opens `count` connections, then reads until every connection got `rounds` messages.
 * Latencies are stored connection-major: latency_us[connection * rounds + round - 1].
 */
static void run_reader(int report_fd, uint16_t port, int count, int rounds)
{
    /* Die with the parent, and never outlive the run on our own either. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(1);
    alarm(WATCHDOG_SECONDS);

    struct reader_connection *connections = calloc((size_t)count, sizeof *connections);
    uint32_t *latency_us = malloc((size_t)count * (size_t)rounds * sizeof *latency_us);
    uint32_t *received_per_round = calloc((size_t)rounds + 1, sizeof *received_per_round);
    if (connections == NULL || latency_us == NULL || received_per_round == NULL) fail("reader malloc");
    memset(latency_us, 0xff, (size_t)count * (size_t)rounds * sizeof *latency_us);

    int epoll_fd = epoll_create1(0);
    if (epoll_fd < 0) fail("epoll_create1");
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* Abortive close: no TIME_WAIT leftovers after thousands of connections. */
    struct linger reset_on_close = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket");
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof reset_on_close);
        /* Blocking connect: the parent accepts concurrently, and setup time is not measured. */
        if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0) fail("connect");
        struct epoll_event interest = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &interest) != 0) fail("epoll_ctl");
        connections[i].fd = fd;
    }
    struct report ready = {REPORT_READY, (uint32_t)count};
    write_all(report_fd, &ready, sizeof ready);
    uint64_t cpu_at_ready = cpu_us_self(NULL);

    int rounds_done = 0;
    struct epoll_event events[EVENT_BATCH];
    char buffer[4096];
    while (rounds_done < rounds) {
        int ready_count = epoll_wait(epoll_fd, events, EVENT_BATCH, -1);
        if (ready_count < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait");
        }
        for (int e = 0; e < ready_count; e++) {
            uint32_t index = events[e].data.u32;
            struct reader_connection *connection = &connections[index];
            ssize_t got = read(connection->fd, buffer, sizeof buffer);
            /* Read the clock once per read, right after it: this is the arrival time. */
            uint64_t arrived_us = monotonic_us();
            if (got <= 0) {
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                fprintf(stderr, "fanout-floor reader: connection %u ended early\n", index);
                _exit(1);
            }
            for (ssize_t b = 0; b < got; b++) {
                if (buffer[b] != '\n') {
                    if (connection->pending_length < sizeof connection->pending - 1)
                        connection->pending[connection->pending_length++] = buffer[b];
                    continue;
                }
                connection->pending[connection->pending_length] = '\0';
                connection->pending_length = 0;
                unsigned round;
                unsigned long long stamp_us;
                if (sscanf(connection->pending, "%u %llu", &round, &stamp_us) != 2 || round < 1 || round > (unsigned)rounds) {
                    fprintf(stderr, "fanout-floor reader: malformed message on connection %u\n", index);
                    _exit(1);
                }
                latency_us[(size_t)index * (size_t)rounds + round - 1] = (uint32_t)(arrived_us - stamp_us);
                if (++received_per_round[round] == (uint32_t)count) {
                    struct report done = {REPORT_ROUND_DONE, round};
                    write_all(report_fd, &done, sizeof done);
                    rounds_done++;
                }
            }
        }
    }

    struct reader_summary summary = {cpu_us_self(NULL) - cpu_at_ready};
    struct report results = {REPORT_RESULTS, (uint32_t)((size_t)count * (size_t)rounds)};
    write_all(report_fd, &results, sizeof results);
    write_all(report_fd, &summary, sizeof summary);
    write_all(report_fd, latency_us, (size_t)count * (size_t)rounds * sizeof *latency_us);
    _exit(0); /* closes every socket with RST */
}

/* ---------------------------------------------------------------- parent (the "server") */

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank quantile of an ascending array, as bench/stats.ts computes it. */
static size_t nearest_rank(size_t length, double q)
{
    size_t rank = (size_t)(q * (double)length + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > length) rank = length;
    return rank - 1;
}

static double median_ms(uint64_t *values_us, size_t length)
{
    qsort(values_us, length, sizeof *values_us, compare_u64);
    return (double)values_us[nearest_rank(length, 0.5)] / 1000.0;
}

static double max_ms(const uint64_t *values_us, size_t length)
{
    uint64_t max = 0;
    for (size_t i = 0; i < length; i++)
        if (values_us[i] > max) max = values_us[i];
    return (double)max / 1000.0;
}

static long parse_count(const char *text, const char *name, long min, long max)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < min || value > max) {
        fprintf(stderr, "usage: fanout-floor [connections=%d] [rounds=%d] [reader_processes=%d]\n"
                        "  %s must be an integer in %ld..%ld\n",
                DEFAULT_CONNECTIONS, DEFAULT_ROUNDS, DEFAULT_READERS, name, min, max);
        exit(64);
    }
    return value;
}

/* Waits for one report of this kind (and, for ROUND_DONE, this round) from every reader. */
static void await_reports(const int *report_fds, int readers, uint32_t kind, uint32_t value, int timeout_ms)
{
    int waiting = readers;
    int done[MAX_READERS] = {0};
    uint64_t deadline_us = monotonic_us() + (uint64_t)timeout_ms * 1000u;
    while (waiting > 0) {
        struct pollfd polls[MAX_READERS];
        for (int r = 0; r < readers; r++) polls[r] = (struct pollfd){.fd = done[r] ? -1 : report_fds[r], .events = POLLIN};
        uint64_t now_us = monotonic_us();
        int left_ms = now_us >= deadline_us ? 0 : (int)((deadline_us - now_us) / 1000u) + 1;
        int ready = poll(polls, (nfds_t)readers, left_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) fail("poll");
        if (ready == 0) {
            fprintf(stderr, "fanout-floor: %d reader(s) did not report %s %u within %d ms\n", waiting,
                    kind == REPORT_READY ? "ready" : "round", value, timeout_ms);
            exit(1);
        }
        for (int r = 0; r < readers; r++) {
            if (done[r] || polls[r].revents == 0) continue;
            struct report report;
            if (!read_all(report_fds[r], &report, sizeof report)) {
                fprintf(stderr, "fanout-floor: reader %d exited early\n", r);
                exit(1);
            }
            if (report.kind != kind || (kind == REPORT_ROUND_DONE && report.value != value)) {
                fprintf(stderr, "fanout-floor: reader %d reported kind %u value %u, expected %u %u\n", r, report.kind,
                        report.value, kind, value);
                exit(1);
            }
            done[r] = 1;
            waiting--;
        }
    }
}

int main(int argc, char **argv)
{
    int connections = argc > 1 ? (int)parse_count(argv[1], "connections", 1, 1000000) : DEFAULT_CONNECTIONS;
    int rounds = argc > 2 ? (int)parse_count(argv[2], "rounds", 1, 1000) : DEFAULT_ROUNDS;
    int readers = argc > 3 ? (int)parse_count(argv[3], "reader_processes", 1, MAX_READERS) : DEFAULT_READERS;
    if (readers > connections) readers = connections;

    /* The parent holds every accepted socket; a reader holds its share (fewer). */
    raise_fd_limit(connections + FD_HEADROOM);
    signal(SIGALRM, on_watchdog);
    alarm(WATCHDOG_SECONDS);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) fail("socket");
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t address_length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0) fail("bind");
    if (listen(listener, SOMAXCONN) != 0) fail("listen");
    if (getsockname(listener, (struct sockaddr *)&address, &address_length) != 0) fail("getsockname");
    uint16_t port = ntohs(address.sin_port);

    fflush(stdout); /* nothing buffered may be written twice by the children */
    int report_fds[MAX_READERS];
    pid_t reader_pids[MAX_READERS];
    uint64_t setup_started_us = monotonic_us();
    for (int r = 0; r < readers; r++) {
        int share = connections / readers + (r < connections % readers ? 1 : 0);
        int pipe_fds[2];
        if (pipe2(pipe_fds, O_CLOEXEC) != 0) fail("pipe2");
        pid_t pid = fork();
        if (pid < 0) fail("fork");
        if (pid == 0) {
            close(listener);
            close(pipe_fds[0]);
            for (int earlier = 0; earlier < r; earlier++) close(report_fds[earlier]);
            run_reader(pipe_fds[1], port, share, rounds);
        }
        close(pipe_fds[1]);
        report_fds[r] = pipe_fds[0];
        reader_pids[r] = pid;
    }

    int *sockets = malloc((size_t)connections * sizeof *sockets);
    if (sockets == NULL) fail("malloc");
    int one = 1;
    for (int i = 0; i < connections; i++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) {
                i--;
                continue;
            }
            fail("accept4");
        }
        /* As a streaming server would: small messages go out at once. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockets[i] = fd;
    }
    close(listener);
    await_reports(report_fds, readers, REPORT_READY, 0, ROUND_TIMEOUT_MS);
    double setup_s = (double)(monotonic_us() - setup_started_us) / 1e6;

    uint64_t *write_loop_us = malloc((size_t)rounds * sizeof *write_loop_us);
    uint64_t *server_cpu_us = malloc((size_t)rounds * sizeof *server_cpu_us);
    if (write_loop_us == NULL || server_cpu_us == NULL) fail("malloc");
    uint64_t server_system_total_us = 0;
    for (int round = 1; round <= rounds; round++) {
        sleep_ms(ROUND_GAP_MS);
        uint64_t system_before_us;
        uint64_t cpu_before = cpu_us_self(&system_before_us);
        uint64_t stamp_us = monotonic_us();
        char message[MESSAGE_BYTES + 1];
        /* Pad to a fixed size with spaces before the newline; the reader's sscanf skips them. */
        int length = snprintf(message, sizeof message, "%d %llu", round, (unsigned long long)stamp_us);
        memset(message + length, ' ', (size_t)(MESSAGE_BYTES - 1 - length));
        message[MESSAGE_BYTES - 1] = '\n';
        for (int i = 0; i < connections; i++) {
            /* One write per socket; the send buffer is empty, so anything short is a failure. */
            ssize_t written = write(sockets[i], message, MESSAGE_BYTES);
            if (written != MESSAGE_BYTES) {
                fprintf(stderr, "fanout-floor: short write (%zd) on connection %d in round %d: %s\n", written, i, round,
                        written < 0 ? strerror(errno) : "partial");
                exit(1);
            }
        }
        write_loop_us[round - 1] = monotonic_us() - stamp_us;
        await_reports(report_fds, readers, REPORT_ROUND_DONE, (uint32_t)round, ROUND_TIMEOUT_MS);
        uint64_t system_after_us;
        server_cpu_us[round - 1] = cpu_us_self(&system_after_us) - cpu_before;
        server_system_total_us += system_after_us - system_before_us;
    }

    size_t total = (size_t)connections * (size_t)rounds;
    uint32_t *latencies = malloc(total * sizeof *latencies);
    if (latencies == NULL) fail("malloc");
    size_t filled = 0;
    uint64_t readers_cpu_us = 0;
    for (int r = 0; r < readers; r++) {
        struct report results;
        struct reader_summary summary;
        if (!read_all(report_fds[r], &results, sizeof results) || results.kind != REPORT_RESULTS ||
            filled + results.value > total || !read_all(report_fds[r], &summary, sizeof summary) ||
            !read_all(report_fds[r], latencies + filled, results.value * sizeof *latencies)) {
            fprintf(stderr, "fanout-floor: reader %d did not send its results\n", r);
            exit(1);
        }
        filled += results.value;
        readers_cpu_us += summary.cpu_us_during_rounds;
    }
    for (int r = 0; r < readers; r++) {
        int status;
        waitpid(reader_pids[r], &status, 0);
    }
    for (int i = 0; i < connections; i++) close(sockets[i]);

    size_t missing = 0;
    for (size_t i = 0; i < filled; i++) missing += latencies[i] == UINT32_MAX;
    qsort(latencies, filled, sizeof *latencies, compare_u32);
    size_t delivered = filled - missing; /* missing ones (UINT32_MAX) sort last */
    uint64_t server_cpu_total_us = 0;
    for (int i = 0; i < rounds; i++) server_cpu_total_us += server_cpu_us[i];

    printf("fanout-floor: %d connections, %d rounds, %d reader processes, %d-byte messages, %ld cores online\n",
           connections, rounds, readers, MESSAGE_BYTES, sysconf(_SC_NPROCESSORS_ONLN));
    printf("setup (connect + accept all)     %.2f s\n", setup_s);
    printf("server write loop per round      median %.2f ms   max %.2f ms\n", median_ms(write_loop_us, (size_t)rounds),
           max_ms(write_loop_us, (size_t)rounds));
    if (delivered > 0)
        printf("latency (arrival - stamp)        p50 %.2f ms   p99 %.2f ms   max %.2f ms   (%zu deliveries, %zu missing)\n",
               latencies[nearest_rank(delivered, 0.5)] / 1000.0, latencies[nearest_rank(delivered, 0.99)] / 1000.0,
               latencies[delivered - 1] / 1000.0, delivered, missing);
    printf("server CPU per round             median %.2f ms   max %.2f ms   mean %.2f ms   (%.0f %% of it in the kernel)\n",
           median_ms(server_cpu_us, (size_t)rounds), max_ms(server_cpu_us, (size_t)rounds),
           (double)server_cpu_total_us / rounds / 1000.0,
           server_cpu_total_us == 0 ? 0.0 : 100.0 * (double)server_system_total_us / (double)server_cpu_total_us);
    printf("readers' CPU per round           mean %.2f ms (all reader processes together)\n",
           (double)readers_cpu_us / rounds / 1000.0);
    return missing == 0 ? 0 : 1;
}
