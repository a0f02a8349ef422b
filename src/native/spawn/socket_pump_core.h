/* The socket pump's state and the calls its two files share: socket_pump.c (the connections)
 * and socket_accept.c (the listening sockets). Not for spawn.c. */
#ifndef DISTKIT_SOCKET_PUMP_CORE_H
#define DISTKIT_SOCKET_PUMP_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>

#include <node_api.h>
#include <uv.h>

#define ARENA_BYTES (256 * 1024)
/** One read takes at most this (a burst of one peer must not starve the others in one turn). */
#define READ_MAX (64 * 1024)
/** Below this much arena left, further readable sockets wait for the next turn (level-triggered). */
#define READ_MIN (4 * 1024)
#define MAX_EVENTS 4096
/** The turn's answers of every socket, gathered by JavaScript for one send() call (socket_pump.c). */
#define OUT_BYTES (64 * 1024)
/** Entries [id, offset, length, result] of one send() call. */
#define MAX_SENDS 4096
/** Ready sockets taken from the epoll set per epoll_wait. */
#define WAIT_BATCH 256
/** The read that moves a socket from the set to a uv_poll_t of its own (it is not a one-shot). */
#define OWN_POLL_AT_READ 2

enum { EV_DATA = 1, EV_EOF = 2, EV_ERROR = 3, EV_DRAIN = 4, EV_CLOSED = 5, EV_ACCEPTED = 6 };
/** A Redis link's answers (redis_link.c): a status, a GET's value, a refusal. */
enum { EV_STATUS = 7, EV_VALUE = 8, EV_REPLY_ERROR = 9 };
/** Redis links at most (a standalone Redis's, or a cluster's masters'). */
#define MAX_LINKS 256

/** Listening sockets at most (dc_server binds a few; systemd passes a few). */
#define MAX_LISTENERS 64
/** An epoll tag with this bit names a listener, not a connection. */
#define LISTENER_TAG 0x80000000u
/** Connections taken per listener per wake-up (the rest wait for the next turn). */
#define ACCEPT_BATCH 64
/** What an accepted event puts in the arena at most: 4 bytes, then the address as text. */
#define ACCEPT_INFO (4 + INET6_ADDRSTRLEN)

typedef struct Conn {
  int fd;
  int id;
  /** What the socket waits for (UV_READABLE, UV_WRITABLE); 0 = nothing (not in the set). */
  int mask;
  /** The socket's own poll handle once it read OWN_POLL_AT_READ times (freed by its close). */
  uv_poll_t *own;
  int reads;
  unsigned char *pending;
  size_t pending_len, pending_off, pending_cap;
  int paused, peer_done, ending, shut, closing;
  /** Accepted here: its fd is the socket's only one, so closing it leaves the set by itself. */
  int sole;
  /** Registered in the set (a sole socket stays there, waiting for nothing, until the turn ends). */
  int in_set;
  /** In pump.lazy: its DEL waits for the end of the turn. */
  int lazy;
  /** TCP, accepted here: TCP_NODELAY is set at its OWN_POLL_AT_READ-th read (see accept_some). */
  int no_delay_later;
  /** A Redis link (redis_link.c): its replies are parsed here, not handed over as data. */
  struct RedisLink *link;
  /** Its replies wait in link_backlog for the end of this turn's callback. */
  int backlogged;
} Conn;

typedef struct {
  napi_env env;
  napi_ref callback, arena_ref, events_ref, out_ref, sends_ref, resource;
  napi_async_context context;
  unsigned char *arena;
  size_t arena_used;
  int32_t *events;
  int count;
  /** What send() sends from, and its entries (see socket_pump.c). */
  unsigned char *out;
  int32_t *sends;
  uv_check_t check;
  /** The epoll set of every socket that waits for something, polled by libuv as one fd. */
  int epfd;
  uv_poll_t epoll;
  uv_loop_t *loop;
  /** Sockets in the set: the loop stays alive while one waits (as its own uv_poll_t kept it). */
  int waiting;
  Conn **conns;
  int capacity;
  int *free_ids;
  int free_count;
  /** Closed this turn: freed, and their ids reusable, once the turn's callback has run. */
  Conn **closed;
  int closed_count, closed_cap;
  /** Sole sockets that stopped waiting this turn: out of the set at its end unless closed (same
   * capacity as closed). */
  Conn **lazy;
  int lazy_count;
  int open;
  /** Listening sockets by listener number (-1 = free). */
  int listeners[MAX_LISTENERS];
  /** An fd held in reserve: closed to accept and close a connection when fds run out (libuv's
   * trick: a peer is refused at once instead of waiting in the backlog, and the level-triggered
   * listener does not spin). */
  int reserve_fd;
} PumpState;


/** The one pump of the process (socket_pump.c). */
extern PumpState pump;

/* Adds one event [id, kind, offset, length] to this turn's. */
void push_event(int id, int kind, size_t offset, size_t length);
void set_no_delay(int fd);
/* A connection of the pump on `fd` (taken: closed on failure); NULL with errno set on failure. */
Conn *new_conn(int fd);
/* Reads what the socket has into the arena (an event), if the turn has room. */
void read_some(Conn *c);
/* Polls for what the connection waits for. */
void update_poll(Conn *c);
napi_value int_result(napi_env env, int value);
/* The int32 first argument of a call: 1, or 0 with an exception pending. */
int int_arg(napi_env env, napi_callback_info info, int32_t *value);

/** A call of the module: its name in the exports and its C function. */
typedef struct {
  const char *name;
  napi_callback fn;
} PumpCall;

/* Adds `calls` to the module's exports; 0, or -1 on failure. */
int export_calls(napi_env env, napi_value exports, const PumpCall *calls, size_t count);

/* Reports the failure and closes the socket. */
void fail_conn(Conn *c, int err);
/* Sends bytes now, queueing what the socket does not take: 1, 0 queued, -errno (closed). */
int send_or_queue(Conn *c, const unsigned char *data, size_t length);

/* redis_link.c: reads and parses a link's replies into this turn's events. */
void link_read(Conn *c);
/* redis_link.c: parses what links left for want of room this turn; the events now pending. */
int link_backlog(void);
void link_free(struct RedisLink *l);
/* redis_link.c: adds the link's calls to the module's exports; 0, or -1 on failure. */
int register_redis_link(napi_env env, napi_value exports);

/* socket_accept.c: takes the connections waiting on one listener. */
void accept_some(int listener);
/* socket_accept.c: adds the listening calls to the module's exports; 0, or -1 on failure. */
int register_socket_accept(napi_env env, napi_value exports);

#endif
