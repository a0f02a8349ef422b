/*
 * redis_link: dc_server's steady-state Redis pipeline on the socket pump (issue 18). A pumped
 * socket connected to a Redis (by ioredis, which did the connecting, AUTH and SELECT: see
 * src/redis/pumped_link.ts) becomes a link: the requests JavaScript gathers in the link's command
 * area are encoded here as Redis commands and sent in one send(), and the replies are read into
 * the link's own buffer and parsed here; each reply becomes one event of the pump's callback
 * carrying the distcache answer's payload (a status byte, or a GET's value in the arena), so
 * JavaScript handles neither a RESP byte nor a net.Socket for it.
 *
 *   linkStart(id, prefix, mget) -> [cmds: Int32Array, bytes: Buffer]   makes pumped socket `id` a
 *     link whose keys all start with `prefix`. A request is an entry of six ints in cmds: [operation,
 *     keyOffset, keyLength, dataOffset, dataLength, px] (distcache's ADD 0, GET 1, REMOVE 2,
 *     HAVE 3) naming bytes in `bytes`: ADD -> SET key data PX px NX, GET -> GET, REMOVE -> DEL,
 *     HAVE -> EXISTS, and with `mget` a run of lookups (GET, HAVE) one MGET (a HAVE is then
 *     answered by whether the value is there: sessions are strings; not on a cluster, where the
 *     keys of one command must share a slot).
 *   linkSend(id, count) -> 1 sent | 0 queued (sent as the socket takes it) | -errno (closed, no
 *     event follows)   sends the first `count` requests, in order.
 *   Events, one per request in request order: [id, 7, 0, status] a status byte; [id, 8, offset,
 *     length] a GET's value, arena[offset, offset+length); [id, 9, offset, length] Redis refused
 *     it (the error line in the arena: MOVED, OOM, ...) or answered something unexpected. A lost
 *     connection is the pump's error event (3); EOF is reported as ECONNRESET.
 *   replyParse(ops, bytes, cuts) -> Int32Array   the parser alone over bytes fed in pieces (for
 *     the property test): events [kind, a, b] with values as offsets into `bytes`.
 *
 * The parser is our own, for the handful of RESP2 replies these commands get (+OK, -ERR..., :n,
 * $n / $-1, an MGET's *n of bulks): hiredis's redisReader builds an allocated object tree per
 * reply and is not installed here; this one allocates nothing per reply, is incremental (an item
 * split across reads waits, an MGET's elements are answered as they come) and bounded (REPLY_LINE_MAX,
 * BULK_MAX: a longer reply is a protocol error that fails the link).
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <node_api.h>

#include "socket_pump.h"
#include "socket_pump_core.h"

/** Requests of one linkSend at most, and bytes of its command area. */
#define CMD_MAX 4096
#define CMD_BYTES (256 * 1024)
/** An MGET gathers this many lookups at most. */
#define MGET_MAX 512
/** A status or error line, and a bulk string, at most. */
#define REPLY_LINE_MAX 4096
#define BULK_MAX (1024 * 1024)
/** Error text an event carries at most. */
#define ERROR_TEXT 512

enum { OP_ADD = 0, OP_GET = 1, OP_REMOVE = 2, OP_HAVE = 3 };
enum { DC_OK = 0x00, DC_NOTOK = 0x01, DC_ADD_MATCHING_SESSION = 0x65 };

/** One request awaiting its reply: its operation; `run` > 0 on the first of an MGET's lookups. */
typedef struct {
  uint8_t op;
  uint32_t run;
} Expect;

struct RedisLink {
  unsigned char *prefix;
  size_t prefix_len;
  napi_ref cmds_ref, bytes_ref;
  int32_t *cmds;
  unsigned char *bytes;
  /** Replies read and not parsed yet: rbuf[rpos, rlen). */
  unsigned char *rbuf;
  size_t rpos, rlen, rcap;
  /** Requests sent, in order (a ring). */
  Expect *fifo;
  size_t head, count, cap;
  /** Elements left of the MGET reply being read. */
  size_t array_left;
  unsigned char *scratch;
  size_t scratch_cap;
  /** Runs of lookups go as one MGET (not on a cluster: the keys of one command share a slot). */
  int mget;
};

/* ---- The parser ---------------------------------------------------------------------------- */

/** One RESP item: type '+', '-', ':', '$' (n = length, -1 nil; data at `at`), '*' (n = count). */
typedef struct {
  char type;
  long long n;
  size_t at, end;
} Item;

/* The number of a header line b[1..] up to CRLF; 1 ok, 0 incomplete, -1 corrupt. */
static int parse_number(const unsigned char *b, size_t len, long long *n, size_t *end) {
  size_t i = 1;
  int negative = 0;
  long long value = 0;
  if (i < len && b[i] == '-') negative = 1, i++;
  size_t digits = 0;
  for (; i < len && b[i] >= '0' && b[i] <= '9'; i++) {
    if (++digits > 18) return -1;
    value = value * 10 + (b[i] - '0');
  }
  if (i + 1 >= len) return i - 1 > 20 ? -1 : 0;
  if (digits == 0 || b[i] != '\r' || b[i + 1] != '\n') return -1;
  *n = negative ? -value : value;
  *end = i + 2;
  return 1;
}

/* One item at b[0, len): 1 (item filled), 0 incomplete, -1 corrupt. For '*' only the header. */
static int parse_item(const unsigned char *b, size_t len, Item *it) {
  if (len == 0) return 0;
  it->type = (char)b[0];
  switch (b[0]) {
    case '+':
    case '-': {
      size_t limit = len < REPLY_LINE_MAX ? len : REPLY_LINE_MAX;
      for (size_t i = 1; i + 1 < limit; i++)
        if (b[i] == '\r') {
          if (b[i + 1] != '\n') return -1;
          it->at = 1, it->n = (long long)(i - 1), it->end = i + 2;
          return 1;
        }
      return len >= REPLY_LINE_MAX ? -1 : 0;
    }
    case ':':
    case '*':
    case '$': {
      size_t end;
      int r = parse_number(b, len, &it->n, &end);
      if (r <= 0) return r;
      if (b[0] == ':') {
        it->end = end;
        return 1;
      }
      if (it->n < -1 || it->n > (b[0] == '$' ? BULK_MAX : MGET_MAX)) return -1;
      it->at = end, it->end = end;
      if (b[0] == '*' || it->n < 0) return 1;
      if (len < end + (size_t)it->n + 2) return 0;
      if (b[end + it->n] != '\r' || b[end + it->n + 1] != '\n') return -1;
      it->end = end + (size_t)it->n + 2;
      return 1;
    }
    default:
      return -1;
  }
}

/** Where the parser's answers go: the pump's events and arena, or the test's list. */
typedef struct {
  /* Room for `events` more answers with `bytes` of values or text. */
  int (*room)(void *self, size_t events, size_t bytes);
  void (*status)(void *self, int status);
  void (*value)(void *self, const unsigned char *b, size_t length);
  void (*error)(void *self, const unsigned char *b, size_t length, size_t times);
  void *self;
} Sink;

static const unsigned char UNEXPECTED[] = "unexpected reply";

/* The status a reply gives `op` (an MGET element's when `element`); -1 when it is a GET's
 * value, -2 when it is no reply of the command. */
static int status_of(int op, int element, const Item *it) {
  if (element || op == OP_GET) {
    /* A lookup answered by a bulk (GET, or an MGET element). */
    if (it->type != '$') return -2;
    if (it->n < 0) return DC_NOTOK;
    return op == OP_HAVE ? DC_OK : -1;
  }
  switch (op) {
    case OP_ADD:
      if (it->type == '+') return DC_OK;
      if (it->type == '$' && it->n < 0) return DC_ADD_MATCHING_SESSION;
      return -2;
    default: /* REMOVE (DEL), HAVE (EXISTS) */
      return it->type == ':' ? (it->n > 0 ? DC_OK : DC_NOTOK) : -2;
  }
}

/* Parses what `l` holds, answering in order, while the sink has room; 0, or -1 corrupt (or a
 * reply nobody asked for). */
static int parse_replies(struct RedisLink *l, const Sink *s) {
  while (l->rpos < l->rlen) {
    if (l->count == 0) return -1;
    const unsigned char *b = l->rbuf + l->rpos;
    size_t len = l->rlen - l->rpos;
    Expect *e = &l->fifo[l->head];
    if (e->run > l->count) return -1;
    Item it = {0};
    int r = parse_item(b, len, &it);
    if (r < 0) return -1;
    if (r == 0) return 0;
    size_t times = 1;
    if (it.type == '*' && !(l->array_left == 0 && e->run > 0)) return -1;
    if (l->array_left == 0 && e->run > 0) {
      /* The head of an MGET reply: its elements follow; an error answers the whole run. */
      if (it.type == '*') {
        if (it.n != (long long)e->run) return -1;
        l->array_left = (size_t)it.n;
        l->rpos += it.end;
        continue;
      }
      if (it.type != '-') return -1;
      times = e->run;
    }
    size_t text = it.type == '-' ? (size_t)it.n : 0;
    if (text > ERROR_TEXT) text = ERROR_TEXT;
    int status = it.type == '-' ? -3 : status_of(e->op, l->array_left > 0, &it);
    size_t bytes = status == -1 ? (size_t)it.n : status == -2 ? sizeof UNEXPECTED - 1 : text;
    if (!s->room(s->self, times, bytes)) return 0;
    if (status >= 0) s->status(s->self, status);
    else if (status == -1) s->value(s->self, b + it.at, (size_t)it.n);
    else if (status == -2) s->error(s->self, UNEXPECTED, sizeof UNEXPECTED - 1, 1);
    else s->error(s->self, b + it.at, text, times);
    l->rpos += it.end;
    l->head = (l->head + times) % l->cap;
    l->count -= times;
    if (l->array_left > 0) l->array_left--;
  }
  return 0;
}

/* ---- The pump's side ----------------------------------------------------------------------- */

static int pump_room(void *self, size_t events, size_t bytes) {
  (void)self;
  return pump.count + (int)events <= MAX_EVENTS - 2 && pump.arena_used + bytes <= ARENA_BYTES;
}

static int current_id;

static void pump_status(void *self, int status) {
  (void)self;
  push_event(current_id, EV_STATUS, 0, (size_t)status);
}

static size_t to_arena(const unsigned char *b, size_t length) {
  size_t at = pump.arena_used;
  memcpy(pump.arena + at, b, length);
  pump.arena_used += length;
  return at;
}

static void pump_value(void *self, const unsigned char *b, size_t length) {
  (void)self;
  push_event(current_id, EV_VALUE, to_arena(b, length), length);
}

static void pump_error(void *self, const unsigned char *b, size_t length, size_t times) {
  (void)self;
  size_t at = to_arena(b, length);
  for (size_t i = 0; i < times; i++) push_event(current_id, EV_REPLY_ERROR, at, length);
}

static const Sink PUMP_SINK = {pump_room, pump_status, pump_value, pump_error, NULL};

/** Links that stopped parsing for want of room in this turn (see link_backlog). */
static Conn *backlog[MAX_LINKS];
static int backlog_count;

/* Parses what the link holds into this turn's events; fails the link when Redis sent garbage. */
static void parse_link(Conn *c) {
  struct RedisLink *l = c->link;
  current_id = c->id;
  if (parse_replies(l, &PUMP_SINK) < 0) {
    fail_conn(c, EPROTO);
    return;
  }
  if (l->rpos == l->rlen) {
    l->rpos = l->rlen = 0;
  } else if (l->count > 0 && l->rpos < l->rlen && !c->backlogged && backlog_count < MAX_LINKS) {
    /* Something complete may be left (the turn ran out of room): parsed after the callback. */
    c->backlogged = 1;
    backlog[backlog_count++] = c;
  }
}

void link_read(Conn *c) {
  struct RedisLink *l = c->link;
  /* Parsed after this turn's callback first (the socket, level-triggered, comes back). */
  if (c->backlogged) return;
  if (l->rpos > 0) {
    memmove(l->rbuf, l->rbuf + l->rpos, l->rlen - l->rpos);
    l->rlen -= l->rpos;
    l->rpos = 0;
  }
  if (l->rcap - l->rlen < READ_MIN) {
    /* An item bigger than the buffer is being read: room for it, within BULK_MAX. */
    if (l->rcap >= BULK_MAX + 2 * REPLY_LINE_MAX) {
      fail_conn(c, EPROTO);
      return;
    }
    unsigned char *grown = realloc(l->rbuf, l->rcap * 2);
    if (grown == NULL) {
      fail_conn(c, ENOMEM);
      return;
    }
    l->rbuf = grown;
    l->rcap *= 2;
  }
  ssize_t n;
  do n = read(c->fd, l->rbuf + l->rlen, l->rcap - l->rlen);
  while (n < 0 && errno == EINTR);
  if (n == 0) {
    fail_conn(c, ECONNRESET);
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) fail_conn(c, errno);
    return;
  }
  l->rlen += (size_t)n;
  parse_link(c);
}

int link_backlog(void) {
  int count = backlog_count;
  backlog_count = 0;
  for (int i = 0; i < count; i++) {
    Conn *c = backlog[i];
    c->backlogged = 0;
    if (!c->closing) parse_link(c);
  }
  return pump.count;
}

void link_free(struct RedisLink *l) {
  if (l == NULL) return;
  napi_env env = pump.env;
  napi_delete_reference(env, l->cmds_ref);
  napi_delete_reference(env, l->bytes_ref);
  free(l->prefix);
  free(l->rbuf);
  free(l->fifo);
  free(l->scratch);
  free(l);
}

/* ---- Encoding ------------------------------------------------------------------------------ */

static unsigned char *put_header(unsigned char *p, char kind, size_t n) {
  char digits[24];
  int count = 0;
  do digits[count++] = (char)('0' + n % 10), n /= 10;
  while (n > 0);
  *p++ = (unsigned char)kind;
  while (count > 0) *p++ = (unsigned char)digits[--count];
  *p++ = '\r', *p++ = '\n';
  return p;
}

/* A bulk string of a then b. */
static unsigned char *put_bulk(unsigned char *p, const void *a, size_t alen, const void *b, size_t blen) {
  p = put_header(p, '$', alen + blen);
  memcpy(p, a, alen), p += alen;
  if (blen > 0) memcpy(p, b, blen), p += blen;
  *p++ = '\r', *p++ = '\n';
  return p;
}

static unsigned char *put_word(unsigned char *p, const char *word) {
  return put_bulk(p, word, strlen(word), NULL, 0);
}

static int is_lookup(int op) {
  return op == OP_GET || op == OP_HAVE;
}

static int push_expect(struct RedisLink *l, uint8_t op, uint32_t run) {
  if (l->count == l->cap) {
    size_t cap = l->cap == 0 ? 1024 : 2 * l->cap;
    Expect *grown = malloc(cap * sizeof *grown);
    if (grown == NULL) return -1;
    for (size_t i = 0; i < l->count; i++) grown[i] = l->fifo[(l->head + i) % l->cap];
    free(l->fifo);
    l->fifo = grown, l->head = 0, l->cap = cap;
  }
  l->fifo[(l->head + l->count++) % l->cap] = (Expect){op, run};
  return 0;
}

/* Encodes the first `count` requests of the command area into l->scratch: its length, or -errno. */
static long encode(struct RedisLink *l, int count) {
  size_t bound = 0;
  for (int i = 0; i < count; i++) {
    const int32_t *e = l->cmds + 6 * i;
    if (e[0] < OP_ADD || e[0] > OP_HAVE || e[1] < 0 || e[2] < 0 || e[3] < 0 || e[4] < 0 || (size_t)e[1] + (size_t)e[2] > CMD_BYTES || (size_t)e[3] + (size_t)e[4] > CMD_BYTES)
      return -EINVAL;
    bound += 128 + l->prefix_len + (size_t)e[2] + (size_t)e[4];
  }
  if (bound > l->scratch_cap) {
    unsigned char *grown = realloc(l->scratch, bound);
    if (grown == NULL) return -ENOMEM;
    l->scratch = grown, l->scratch_cap = bound;
  }
  unsigned char *p = l->scratch;
  for (int i = 0; i < count;) {
    const int32_t *e = l->cmds + 6 * i;
    int run = 1;
    if (l->mget && is_lookup(e[0]))
      while (i + run < count && run < MGET_MAX && is_lookup(l->cmds[6 * (i + run)])) run++;
    if (run > 1) {
      p = put_header(p, '*', (size_t)run + 1);
      p = put_word(p, "MGET");
      for (int k = 0; k < run; k++) {
        const int32_t *r = l->cmds + 6 * (i + k);
        p = put_bulk(p, l->prefix, l->prefix_len, l->bytes + r[1], (size_t)r[2]);
        if (push_expect(l, (uint8_t)r[0], k == 0 ? (uint32_t)run : 0) < 0) return -ENOMEM;
      }
      i += run;
      continue;
    }
    static const char *const names[] = {"SET", "GET", "DEL", "EXISTS"};
    p = put_header(p, '*', e[0] == OP_ADD ? 6 : 2);
    p = put_word(p, names[e[0]]);
    p = put_bulk(p, l->prefix, l->prefix_len, l->bytes + e[1], (size_t)e[2]);
    if (e[0] == OP_ADD) {
      p = put_bulk(p, l->bytes + e[3], (size_t)e[4], NULL, 0);
      p = put_word(p, "PX");
      char px[16];
      size_t n = 0;
      uint32_t v = (uint32_t)e[5] == 0 ? 1 : (uint32_t)e[5];
      do px[15 - n++] = (char)('0' + v % 10), v /= 10;
      while (v > 0);
      p = put_bulk(p, px + 16 - n, n, NULL, 0);
      p = put_word(p, "NX");
    }
    if (push_expect(l, (uint8_t)e[0], 0) < 0) return -ENOMEM;
    i++;
  }
  return (long)(p - l->scratch);
}

/* ---- The calls ----------------------------------------------------------------------------- */

static napi_value LinkStart(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3], cmds_buffer, cmds, bytes, pair;
  bool mget = true;
  void *prefix, *cmds_data;
  size_t prefix_len;
  int32_t id;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_int32(env, args[0], &id));
  CHECK(napi_get_buffer_info(env, args[1], &prefix, &prefix_len));
  if (argc > 2) CHECK(napi_get_value_bool(env, args[2], &mget));
  Conn *c = id >= 0 && id < pump.capacity ? pump.conns[id] : NULL;
  if (c == NULL || c->closing || c->link != NULL || prefix_len > REPLY_LINE_MAX) {
    napi_throw_error(env, NULL, "linkStart: not an open pumped socket");
    return NULL;
  }
  struct RedisLink *l = calloc(1, sizeof *l);
  if (l == NULL) return throw_errno(env, ENOMEM, "linkStart", "redis link");
  l->prefix = malloc(prefix_len + 1);
  l->rbuf = malloc(ARENA_BYTES);
  if (l->prefix == NULL || l->rbuf == NULL) {
    free(l->prefix), free(l->rbuf), free(l);
    return throw_errno(env, ENOMEM, "linkStart", "redis link");
  }
  memcpy(l->prefix, prefix, prefix_len);
  l->prefix_len = prefix_len;
  l->rcap = ARENA_BYTES;
  l->mget = mget;
  CHECK(napi_create_arraybuffer(env, CMD_MAX * 6 * sizeof(int32_t), &cmds_data, &cmds_buffer));
  CHECK(napi_create_typedarray(env, napi_int32_array, CMD_MAX * 6, cmds_buffer, 0, &cmds));
  CHECK(napi_create_buffer(env, CMD_BYTES, (void **)&l->bytes, &bytes));
  l->cmds = cmds_data;
  CHECK(napi_create_reference(env, cmds, 1, &l->cmds_ref));
  CHECK(napi_create_reference(env, bytes, 1, &l->bytes_ref));
  c->link = l;
  update_poll(c);
  CHECK(napi_create_array_with_length(env, 2, &pair));
  CHECK(napi_set_element(env, pair, 0, cmds));
  CHECK(napi_set_element(env, pair, 1, bytes));
  return pair;
}

static napi_value LinkSend(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int32_t id, count;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_int32(env, args[0], &id));
  CHECK(napi_get_value_int32(env, args[1], &count));
  Conn *c = id >= 0 && id < pump.capacity ? pump.conns[id] : NULL;
  if (c == NULL || c->closing || c->link == NULL) return int_result(env, -EPIPE);
  if (count <= 0) return int_result(env, 1);
  if (count > CMD_MAX) return int_result(env, -EINVAL);
  size_t before = c->link->count;
  long length = encode(c->link, count);
  if (length < 0) {
    /* Nothing was sent: the requests queued for replies go again (the FIFO is as before). */
    c->link->count = before;
    return int_result(env, (int)length);
  }
  return int_result(env, send_or_queue(c, c->link->scratch, (size_t)length));
}

/* The parser alone (see the top): ops is [op, run] pairs, cuts are where the bytes are split. */
typedef struct {
  int32_t *out;
  size_t used, cap;
  const unsigned char *base;
} TestSink;

static int test_room(void *self, size_t events, size_t bytes) {
  (void)bytes;
  TestSink *t = self;
  return t->used + 3 * events <= t->cap;
}
static void test_put(TestSink *t, int kind, int a, int b) {
  t->out[t->used++] = kind, t->out[t->used++] = a, t->out[t->used++] = b;
}
static void test_status(void *self, int status) {
  test_put(self, EV_STATUS, 0, status);
}
static void test_value(void *self, const unsigned char *b, size_t length) {
  TestSink *t = self;
  test_put(t, EV_VALUE, (int)(b - t->base), (int)length);
}
static void test_error(void *self, const unsigned char *b, size_t length, size_t times) {
  TestSink *t = self;
  /* The text's offset in `bytes` (UNEXPECTED's: -1). */
  int at = b == UNEXPECTED ? -1 : (int)(b - t->base);
  for (size_t i = 0; i < times; i++) test_put(t, EV_REPLY_ERROR, at, (int)length);
}

static napi_value ReplyParse(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3], result_buffer, result;
  void *ops_data, *bytes, *cuts_data, *out;
  size_t ops_len, bytes_len, cuts_len;
  napi_typedarray_type type;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, args[0], &type, &ops_len, &ops_data, NULL, NULL));
  CHECK(napi_get_buffer_info(env, args[1], &bytes, &bytes_len));
  CHECK(napi_get_typedarray_info(env, args[2], &type, &cuts_len, &cuts_data, NULL, NULL));
  const int32_t *ops = ops_data, *cuts = cuts_data;
  struct RedisLink l = {0};
  for (size_t i = 0; i + 1 < ops_len; i += 2) push_expect(&l, (uint8_t)ops[i], (uint32_t)ops[i + 1]);
  size_t cap = 3 * (ops_len / 2) + 3;
  CHECK(napi_create_arraybuffer(env, cap * sizeof(int32_t), &out, &result_buffer));
  /* The bytes fed in pieces, as reads would bring them: the link's buffer is `bytes` itself, its
   * end moved to each cut in turn. */
  TestSink t = {out, 0, cap, bytes};
  Sink sink = {test_room, test_status, test_value, test_error, &t};
  l.rbuf = bytes;
  int failed = 0;
  for (size_t i = 0; i <= cuts_len && !failed; i++) {
    size_t end = i < cuts_len ? (size_t)cuts[i] : bytes_len;
    if (end < l.rlen || end > bytes_len) continue;
    l.rlen = end;
    failed = parse_replies(&l, &sink) < 0;
  }
  free(l.fifo);
  if (failed) test_put(&t, -1, (int)l.rpos, 0);
  CHECK(napi_create_typedarray(env, napi_int32_array, t.used, result_buffer, 0, &result));
  return result;
}

int register_redis_link(napi_env env, napi_value exports) {
  static const PumpCall calls[] = {{"linkStart", LinkStart}, {"linkSend", LinkSend}, {"replyParse", ReplyParse}};
  return export_calls(env, exports, calls, sizeof calls / sizeof calls[0]);
}
