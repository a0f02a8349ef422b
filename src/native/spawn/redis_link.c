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
 *
 * The replies are parsed by redis_reply.c (our own parser: see there why).
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <node_api.h>

#include "socket_pump.h"
#include "socket_pump_core.h"
#include "redis_link.h"

/** Requests of one linkSend at most, and bytes of its command area. */
#define CMD_MAX 4096
#define CMD_BYTES (256 * 1024)

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

int register_redis_link(napi_env env, napi_value exports) {
  static const PumpCall calls[] = {{"linkStart", LinkStart}, {"linkSend", LinkSend}};
  if (export_calls(env, exports, calls, sizeof calls / sizeof calls[0]) != 0) return -1;
  return register_reply_parse(env, exports);
}
