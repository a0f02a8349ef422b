/*
 * redis_reply: the reply parser of a Redis link (redis_link.c), for the handful of RESP2 replies
 * dc_server's commands get (+OK, -ERR..., :n, $n / $-1, an MGET's *n of bulks), and the queue of
 * requests awaiting them. Our own: hiredis's redisReader builds an allocated object tree per reply
 * and is not installed here; this one allocates nothing per reply, is incremental (an item split
 * across reads waits, an MGET's elements are answered as they come) and bounded (REPLY_LINE_MAX,
 * BULK_MAX: a longer reply is a protocol error that fails the link). Each request gets exactly one
 * answer, in order: a status byte, a GET's value, or Redis's error line (an MGET's error answers
 * each of its lookups); a reply its command does not get answers "unexpected reply".
 *
 *   replyParse(ops, bytes, cuts) -> Int32Array   the parser alone over bytes fed in pieces (for
 *     the property test, test/redis/reply_parser.test.ts): ops are [operation, run] pairs, the
 *     answers [kind, a, b] with values as offsets into `bytes`, and [-1, offset, 0] at the end
 *     when the bytes are corrupt.
 */

#include <stdlib.h>
#include <string.h>

#include <node_api.h>

#include "socket_pump.h"
#include "socket_pump_core.h"
#include "redis_link.h"

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

const unsigned char UNEXPECTED[17] = "unexpected reply";

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

int parse_replies(struct RedisLink *l, const Sink *s) {
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

int push_expect(struct RedisLink *l, uint8_t op, uint32_t run) {
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

int register_reply_parse(napi_env env, napi_value exports) {
  static const PumpCall calls[] = {{"replyParse", ReplyParse}};
  return export_calls(env, exports, calls, sizeof calls / sizeof calls[0]);
}
