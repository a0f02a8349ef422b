/* What redis_link.c (a Redis link on the socket pump) and redis_reply.c (its reply parser) share. */
#ifndef DISTKIT_REDIS_LINK_H
#define DISTKIT_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <node_api.h>

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

/** Where the parser's answers go: the pump's events and arena, or the test's list. */
typedef struct {
  /* Room for `events` more answers with `bytes` of values or text. */
  int (*room)(void *self, size_t events, size_t bytes);
  void (*status)(void *self, int status);
  void (*value)(void *self, const unsigned char *b, size_t length);
  void (*error)(void *self, const unsigned char *b, size_t length, size_t times);
  void *self;
} Sink;

/** What redis_reply.c answers a reply its command does not get with. */
extern const unsigned char UNEXPECTED[17];

/* Parses what `l` holds, answering in order, while the sink has room; 0, or -1 corrupt (or a
 * reply nobody asked for). */
int parse_replies(struct RedisLink *l, const Sink *s);
/* Queues one request awaiting its reply; 0, or -1 out of memory. */
int push_expect(struct RedisLink *l, uint8_t op, uint32_t run);
/* Adds replyParse (the parser alone, for its property test) to the module's exports. */
int register_reply_parse(napi_env env, napi_value exports);

#endif
