/* The cache bench's load generator (scripts/bench/cache_bench.ts compiles it at bench time with
 * cc -O2 into the bench's cache dir): N distcache clients in one thread, each with one request
 * outstanding at a time as Apache's mod_socache_dc does, driven by poll(). Written in C so that
 * the generator costs far less per operation than any server it measures (a node generator
 * topped out near the servers' own figures and hid the differences).
 *
 * Usage: cache_load TARGET OP CLIENTS MS IDS SIZE BASE [DEPTH [END]]
 *   TARGET  unix:/path | tcp:host:port
 *   OP      ADD GET HAVE REMOVE CONNECT_GET (connect, GET, close per operation) FILL (ADD ids
 *           0..IDS-1 once, then stop) RESTORE (ADD again the ids a REMOVE run from BASE deleted
 *           up to END, then stop)
 * REMOVE deletes the filled ids in a scattered order (the k-th is id (k * SCATTER) mod IDS), hits
 * until every one is deleted, then misses (notok counts them); the next REMOVE run carries on
 * from where the last stopped (BASE), so it deletes sessions still where the fill put them, not
 * the ones RESTORE added back (those sit last in C's expiry order). Scattered, as the sessions an
 * application invalidates lie anywhere in the store: deleting in the order they were added would
 * always hit the oldest, which is the C server's best case (its store is kept in expiry order and
 * searched from the front).
 * Prints one JSON line: {"ops":N,"ms":N,"cpuMs":N,"nextBase":N,"notok":N} (cpuMs: the
 * generator's own CPU time, so the bench can tell when the generator is the limit; notok: status
 * answers other than OK, and GET misses). Frames: proto u32 BE 0x00110000, is_response u8, uid u32, op_class u8,
 * op u8, complete u8, data_len u16, then data_len bytes (2048 at most per frame). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define FRAME_HEADER 14
#define FRAME_DATA 2048
#define ID_BYTES 32
#define TIMEOUT_MS 3600000u
/* A prime that divides none of the fills the bench uses, so k -> k * SCATTER mod IDS is a permutation. */
#define SCATTER 1000003u

enum { OP_ADD = 0, OP_GET = 1, OP_REMOVE = 2, OP_HAVE = 3 };

struct client {
  int fd;
  uint8_t in[40000];
  size_t have;
  int outstanding;
};

static struct sockaddr_storage addr;
static socklen_t addr_len;
static int is_tcp;

static void die(const char *what) {
  fprintf(stderr, "cache_load: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void parse_target(const char *t) {
  memset(&addr, 0, sizeof addr);
  if (strncmp(t, "unix:", 5) == 0) {
    struct sockaddr_un *u = (struct sockaddr_un *)&addr;
    u->sun_family = AF_UNIX;
    strncpy(u->sun_path, t + 5, sizeof u->sun_path - 1);
    addr_len = sizeof *u;
  } else if (strncmp(t, "tcp:", 4) == 0) {
    struct sockaddr_in *in = (struct sockaddr_in *)&addr;
    char host[256];
    const char *colon = strrchr(t + 4, ':');
    if (colon == NULL || (size_t)(colon - (t + 4)) >= sizeof host) { fprintf(stderr, "cache_load: bad target %s\n", t); exit(2); }
    memcpy(host, t + 4, colon - (t + 4));
    host[colon - (t + 4)] = 0;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1) { fprintf(stderr, "cache_load: bad host %s\n", host); exit(2); }
    addr_len = sizeof *in;
    is_tcp = 1;
  } else {
    fprintf(stderr, "cache_load: target must be unix:PATH or tcp:HOST:PORT\n");
    exit(2);
  }
}

static int open_client(void) {
  int fd = socket(addr.ss_family, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0) die("connect");
  if (is_tcp) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
  return fd;
}

static void id_of(uint8_t *id, uint64_t n) {
  memset(id, 0x69, ID_BYTES);
  for (int i = 0; i < 4; i++) id[i] = (uint8_t)(n >> (24 - 8 * i));
  uint32_t hi = (uint32_t)(n >> 32);
  for (int i = 0; i < 4; i++) id[4 + i] = (uint8_t)(hi >> (24 - 8 * i));
}

/* Encodes one request message of `op` with `payload` into `out`; returns its length. */
static size_t encode(uint8_t *out, uint32_t uid, int op, const uint8_t *payload, size_t len) {
  size_t at = 0, done = 0;
  do {
    size_t chunk = len - done > FRAME_DATA ? FRAME_DATA : len - done;
    uint8_t *h = out + at;
    h[0] = 0x00; h[1] = 0x11; h[2] = 0; h[3] = 0;
    h[4] = 0;
    h[5] = uid >> 24; h[6] = uid >> 16; h[7] = uid >> 8; h[8] = uid;
    h[9] = 0; h[10] = (uint8_t)op; h[11] = done + chunk == len;
    h[12] = chunk >> 8; h[13] = chunk;
    memcpy(h + FRAME_HEADER, payload + done, chunk);
    at += FRAME_HEADER + chunk;
    done += chunk;
  } while (done < len);
  return at;
}

/* Length of the first complete response message in buf, 0 when incomplete; *status gets the
 * first payload byte and *plen the payload length. */
static size_t complete_message(const uint8_t *buf, size_t have, int *status, size_t *plen) {
  size_t at = 0, payload = 0;
  int first = -1;
  for (;;) {
    if (have - at < FRAME_HEADER) return 0;
    size_t dl = ((size_t)buf[at + 12] << 8) | buf[at + 13];
    if (have - at < FRAME_HEADER + dl) return 0;
    if (first < 0 && dl > 0) first = buf[at + FRAME_HEADER];
    payload += dl;
    int complete = buf[at + 11];
    at += FRAME_HEADER + dl;
    if (complete) { *status = first; *plen = payload; return at; }
  }
}

int main(int argc, char **argv) {
  if (argc < 8 || argc > 10) { fprintf(stderr, "usage: cache_load TARGET OP CLIENTS MS IDS SIZE BASE [DEPTH [END]]\n"); return 2; }
  /* Requests each client keeps outstanding (FILL only: the measured cells are one at a time). */
  int depth = argc == 9 ? atoi(argv[8]) : 1;
  parse_target(argv[1]);
  const char *opname = argv[2];
  int clients = atoi(argv[3]);
  double ms = atof(argv[4]);
  uint64_t ids = strtoull(argv[5], NULL, 10);
  size_t size = (size_t)atol(argv[6]);
  uint64_t base = strtoull(argv[7], NULL, 10);
  int fill = strcmp(opname, "FILL") == 0, connect_each = strcmp(opname, "CONNECT_GET") == 0;
  int restore = strcmp(opname, "RESTORE") == 0;
  int op = fill || restore || strcmp(opname, "ADD") == 0 ? OP_ADD
         : strcmp(opname, "GET") == 0 || connect_each ? OP_GET
         : strcmp(opname, "HAVE") == 0 ? OP_HAVE
         : strcmp(opname, "REMOVE") == 0 ? OP_REMOVE : -1;
  if (op < 0 || clients < 1 || clients > MAX_CLIENTS || size > 32000) { fprintf(stderr, "cache_load: bad arguments\n"); return 2; }
  uint64_t restore_end = argc == 10 ? strtoull(argv[9], NULL, 10) : 0;
  if (fill) base = 0;
  if (depth < 1 || depth > 64 || (!fill && depth != 1)) { fprintf(stderr, "cache_load: DEPTH is 1..64, and only for FILL\n"); return 2; }
  if ((op == OP_REMOVE || restore) && ids % SCATTER == 0) { fprintf(stderr, "cache_load: IDS must not be a multiple of %u\n", SCATTER); return 2; }
  static struct client c[MAX_CLIENTS];
  static struct pollfd pfd[MAX_CLIENTS];
  static uint8_t payload[40000], out[45000];
  uint8_t *data = malloc(size + 1);
  memset(data, 0x5a, size);
  uint64_t next = base, seed = 12345, ops = 0, notok = 0;
  uint32_t uid = 1;
  int active = clients;
  double start = now_ms(), end = start + ms;

  /* Sends the next request on client i; returns 0 when there is nothing left to send (FILL). */
  #define SEND_NEXT(i) ({                                                                   \
    int sent = 1;                                                                          \
    uint8_t *id = op == OP_ADD ? payload + 8 : payload;                                    \
    if ((fill && next >= ids) || (restore && next >= restore_end)) sent = 0;                \
    else {                                                                                 \
      uint64_t n;                                                                          \
      if (op == OP_ADD || op == OP_REMOVE) n = next++;                                     \
      else { seed = (seed * 1103515245u + 12345u) & 0xffffffffu; n = seed % (ids ? ids : 1); } \
      if ((op == OP_REMOVE || restore) && ids) n = (n % ids) * SCATTER % ids;              \
      id_of(id, n);                                                                        \
      size_t plen = ID_BYTES;                                                              \
      if (op == OP_ADD) {                                                                  \
        uint32_t t = TIMEOUT_MS, l = ID_BYTES;                                             \
        payload[0] = t >> 24; payload[1] = t >> 16; payload[2] = t >> 8; payload[3] = t;   \
        payload[4] = l >> 24; payload[5] = l >> 16; payload[6] = l >> 8; payload[7] = l;   \
        memcpy(payload + 8 + ID_BYTES, data, size);                                        \
        plen = 8 + ID_BYTES + size;                                                        \
      }                                                                                    \
      if (connect_each) c[i].fd = pfd[i].fd = open_client();                               \
      size_t len = encode(out, uid++, op, payload, plen);                                  \
      for (size_t w = 0; w < len;) {                                                       \
        ssize_t r = write(c[i].fd, out + w, len - w);                                      \
        if (r < 0) { if (errno == EINTR) continue; die("write"); }                         \
        w += (size_t)r;                                                                    \
      }                                                                                    \
    }                                                                                      \
    sent; })

  for (int i = 0; i < clients; i++) {
    c[i].have = 0;
    c[i].outstanding = 0;
    c[i].fd = pfd[i].fd = connect_each ? -1 : open_client();
    pfd[i].events = POLLIN;
    while (c[i].outstanding < depth && SEND_NEXT(i)) c[i].outstanding++;
    if (c[i].outstanding == 0) { close(c[i].fd); pfd[i].fd = -1; active--; }
  }
  while (active > 0) {
    if (poll(pfd, clients, 5000) < 0) { if (errno == EINTR) continue; die("poll"); }
    for (int i = 0; i < clients; i++) {
      if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(c[i].fd, c[i].in + c[i].have, sizeof c[i].in - c[i].have);
      if (r <= 0) { if (r < 0 && errno == EINTR) continue; fprintf(stderr, "cache_load: server closed client %d\n", i); return 1; }
      c[i].have += (size_t)r;
      int status; size_t plen, used;
      while ((used = complete_message(c[i].in, c[i].have, &status, &plen)) > 0) {
        memmove(c[i].in, c[i].in + used, c[i].have - used);
        c[i].have -= used;
        c[i].outstanding--;
        ops++;
        if (op == OP_GET ? plen < 5 : status != 0) notok++;
        if (connect_each) { close(c[i].fd); c[i].fd = pfd[i].fd = -1; }
        if ((fill || restore || now_ms() < end) && SEND_NEXT(i)) c[i].outstanding++;
      }
      if (c[i].outstanding == 0) {
        if (c[i].fd >= 0) close(c[i].fd);
        pfd[i].fd = -1;
        active--;
      }
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
  printf("{\"ops\":%llu,\"ms\":%.3f,\"cpuMs\":%.3f,\"nextBase\":%llu,\"notok\":%llu}\n", (unsigned long long)ops, now_ms() - start, cpu,
         (unsigned long long)next, (unsigned long long)notok);
  return 0;
}
