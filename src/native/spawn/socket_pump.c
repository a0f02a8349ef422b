/*
 * socket_pump: the byte-moving half of dc_server's connections, in C, for its hot path.
 *
 * Node's socket layer costs about 8 us of CPU per request/answer pair (a stream, a Buffer per
 * read, a write request per write, libuv's write queue), more than the whole of the C
 * dc_server's work per operation. Here the connected sockets are polled by the loop's own libuv
 * (through an epoll set, see below), read into one arena that JavaScript sees as a Buffer, and
 * written with send() straight from the caller's bytes. The protocol (frame parsing, the store,
 * the answers) stays in TypeScript; JavaScript is entered once per loop turn with every read of
 * that turn.
 *
 *   open(callback) -> [arena: Buffer, events: Int32Array]
 *     Once per process. After each poll phase that saw events, callback(count) runs with
 *     `count` events in `events`, four ints each: [id, kind, offset, length]. kind 1 = data:
 *     arena[offset, offset+length) (valid during the callback only); 2 = the peer ended its
 *     side; 3 = error, length = errno, the socket is already closed; 4 = drained: every byte
 *     queued by write() is sent (reading resumes); 5 = closed after end() (see end()).
 *   adopt(fd, noDelay) -> id      takes a dup of a connected socket's fd (the caller closes
 *     its own) and starts reading. noDelay sets TCP_NODELAY.
 *   bindTcp(host, port, backlog) / bindUnix(path, backlog) -> fd | -errno   a new listening
 *     socket (SO_REUSEADDR and dual-stack on "::" for TCP, as libuv binds); listen(fd) takes it.
 *   listen(fd) -> listener | -errno   accepts from a listening socket (taken over: unlisten
 *     closes it) in the pump itself: each connection is a socket of the pump (6 = accepted:
 *     arena[offset, offset+length) = [listener u8, family u8 (0 unix, 4, 6), port u16 LE, the
 *     peer's address as text]), read at once (a connect-per-request client has sent its request
 *     by then) without a net.Socket or a turn of the loop in between. TCP gets TCP_NODELAY
 *     at its second read (see accept_some).
 *   unlisten(listener)            stops accepting there and closes the listening socket.
 *   sockName(fd) -> "127.0.0.1:80" | "[::1]:80" | ""   a listening socket's address (TCP).
 *   write(id, buffer, length) -> 1 all sent | 0 queued (the rest is kept here, reading stops
 *     until event 4) | -errno (the socket is closed, no event follows).
 *   end(id) -> 1 closed now (the peer had ended) | 0 later: once queued bytes are sent, FIN
 *     (shutdown SHUT_WR), then input is read and reported until the peer ends, and the socket
 *     closes with event 5 (closing with unread input would send a reset and lose our answers).
 *   pause(id, paused)             stops or resumes reading (an answer later than its turn).
 *   destroy(id)                   closes now, no event.
 *
 * One write of an answer batch is one send(); reading stops while bytes are queued, so a peer
 * that does not read costs one batch plus the socket buffer (back-pressure, as the JS path).
 * Slots (ids) are reused only after the loop turn in which they closed, so an id never names
 * two sockets within one callback.
 *
 * A socket starts in an epoll set of the pump's own, which libuv polls as one fd. A uv_poll_t
 * costs a connection that lives for one request (Apache's mod_socache_dc) six more syscalls:
 * uv_poll_init probes the fd with an epoll ADD and DEL and sets O_NONBLOCK again with an ioctl,
 * and its stop and close each DEL again (the second fails). In the set a socket costs one ADD
 * when it starts waiting and one DEL when it stops or closes. But the set costs every loop turn
 * one epoll_wait more, and every wake-up a nested one, which a persistent connection would pay
 * per request: a socket that reads a second time moves to a uv_poll_t of its own, polled by
 * libuv's epoll directly, and pays that handle's set-up once. The set is level-triggered, as
 * libuv's is.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/un.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "socket_pump.h"

#define ARENA_BYTES (256 * 1024)
/** One read takes at most this (a burst of one peer must not starve the others in one turn). */
#define READ_MAX (64 * 1024)
/** Below this much arena left, further readable sockets wait for the next turn (level-triggered). */
#define READ_MIN (4 * 1024)
#define MAX_EVENTS 4096
/** Ready sockets taken from the epoll set per epoll_wait. */
#define WAIT_BATCH 256
/** The read that moves a socket from the set to a uv_poll_t of its own (it is not a one-shot). */
#define OWN_POLL_AT_READ 2

enum { EV_DATA = 1, EV_EOF = 2, EV_ERROR = 3, EV_DRAIN = 4, EV_CLOSED = 5, EV_ACCEPTED = 6 };

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
} Conn;

static struct {
  napi_env env;
  napi_ref callback, arena_ref, events_ref, resource;
  napi_async_context context;
  unsigned char *arena;
  size_t arena_used;
  int32_t *events;
  int count;
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
} pump;


static void push_event(int id, int kind, size_t offset, size_t length) {
  int32_t *e = pump.events + 4 * pump.count++;
  e[0] = id;
  e[1] = kind;
  e[2] = (int32_t)offset;
  e[3] = (int32_t)length;
}

static void set_no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Frees the sockets closed since the last call: their ids are free from now on. */
static void free_closed(void) {
  for (int i = 0; i < pump.closed_count; i++) {
    Conn *c = pump.closed[i];
    pump.conns[c->id] = NULL;
    pump.free_ids[pump.free_count++] = c->id;
    free(c->pending);
    free(c);
  }
  pump.closed_count = 0;
}

static void on_own_poll(uv_poll_t *handle, int status, int events);
static void accept_some(int listener);

/* Waits for `mask` on the socket's own handle, or in the set (which wakes the loop only while
 * some socket waits in it). */
static void set_mask(Conn *c, int mask) {
  if (mask == c->mask) return;
  if (c->own != NULL) {
    c->mask = mask;
    if (mask == 0) uv_poll_stop(c->own);
    else uv_poll_start(c->own, mask, on_own_poll);
    return;
  }
  struct epoll_event ev = {.events = (mask & UV_READABLE ? EPOLLIN : 0) | (mask & UV_WRITABLE ? EPOLLOUT : 0), .data.u32 = (uint32_t)c->id};
  /* A socket that waits for nothing leaves the set: EPOLLHUP and EPOLLERR would wake it anyway.
   * A sole socket leaves at the end of the turn (drop_lazy): one that stops waiting because its
   * peer ended is mostly closed by then, and its close takes it out for nothing; until then it
   * is not reported (on_epoll skips sockets that wait for nothing). */
  if (mask == 0 && c->sole) {
    if (!c->lazy) {
      c->lazy = 1;
      pump.lazy[pump.lazy_count++] = c;
    }
  } else {
    epoll_ctl(pump.epfd, mask == 0 ? EPOLL_CTL_DEL : c->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->in_set = mask != 0;
  }
  pump.waiting += (mask != 0) - (c->mask != 0);
  c->mask = mask;
  if (pump.waiting == 0) uv_unref((uv_handle_t *)&pump.epoll);
  else uv_ref((uv_handle_t *)&pump.epoll);
}

/* Takes a socket out of the set now. */
static void leave_set(Conn *c) {
  if (!c->in_set) return;
  epoll_ctl(pump.epfd, EPOLL_CTL_DEL, c->fd, NULL);
  c->in_set = 0;
}

/* The end of a turn: the sole sockets that still wait for nothing leave the set. */
static void drop_lazy(void) {
  for (int i = 0; i < pump.lazy_count; i++) {
    Conn *c = pump.lazy[i];
    c->lazy = 0;
    if (!c->closing && c->mask == 0) leave_set(c);
  }
  pump.lazy_count = 0;
}

static void free_handle(uv_handle_t *handle) {
  free(handle);
}

/* Leaves the set for a handle of its own (see the top); stays in the set if that fails. */
static void own_poll(Conn *c) {
  uv_poll_t *own = malloc(sizeof *own);
  if (own == NULL) return;
  int mask = c->mask;
  set_mask(c, 0);
  leave_set(c);
  if (uv_poll_init(pump.loop, own, c->fd) != 0) {
    free(own);
    set_mask(c, mask);
    return;
  }
  own->data = c;
  c->own = own;
  set_mask(c, mask);
}

static void close_conn(Conn *c) {
  if (c->closing) return;
  /* Out of the set before close: the caller's own fd keeps the socket open, and an epoll
   * registration lasts as long as the socket, not the fd. A socket accepted here has no other
   * fd: close() takes it out of the set, and the DEL is only counted. */
  if (c->own != NULL) uv_close((uv_handle_t *)c->own, free_handle);
  else if (!c->sole) set_mask(c, 0);
  else if (c->mask != 0 && --pump.waiting == 0) uv_unref((uv_handle_t *)&pump.epoll);
  c->closing = 1;
  close(c->fd);
  c->fd = -1;
  pump.closed[pump.closed_count++] = c;
}

/* Polls for what the connection waits for: sending queued bytes, else input (unless paused or ended). */
static void update_poll(Conn *c) {
  if (c->closing) return;
  set_mask(c, c->pending_len > c->pending_off ? UV_WRITABLE : (!c->paused && !c->peer_done ? UV_READABLE : 0));
}

static void fail(Conn *c, int err) {
  push_event(c->id, EV_ERROR, 0, (size_t)err);
  close_conn(c);
}

/* The end() steps once nothing is queued: close when the peer is done, else FIN and read on. */
static int finish_end(Conn *c) {
  if (c->peer_done) {
    close_conn(c);
    return 1;
  }
  if (!c->shut) {
    c->shut = 1;
    shutdown(c->fd, SHUT_WR);
  }
  update_poll(c);
  return 0;
}

/* Sends queued bytes; 1 when none is left, 0 when the socket is full again, -errno on failure. */
static int flush_pending(Conn *c) {
  while (c->pending_off < c->pending_len) {
    ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -errno;
    }
    c->pending_off += (size_t)n;
  }
  c->pending_len = c->pending_off = 0;
  if (c->pending_cap > READ_MAX) {
    free(c->pending);
    c->pending = NULL;
    c->pending_cap = 0;
  }
  return 1;
}

static int queue_bytes(Conn *c, const unsigned char *data, size_t length) {
  if (c->pending_off > 0 && c->pending_len + length > c->pending_cap) {
    memmove(c->pending, c->pending + c->pending_off, c->pending_len - c->pending_off);
    c->pending_len -= c->pending_off;
    c->pending_off = 0;
  }
  if (c->pending_len + length > c->pending_cap) {
    size_t cap = c->pending_cap == 0 ? 4096 : c->pending_cap;
    while (cap < c->pending_len + length) cap *= 2;
    unsigned char *grown = realloc(c->pending, cap);
    if (grown == NULL) return -ENOMEM;
    c->pending = grown;
    c->pending_cap = cap;
  }
  memcpy(c->pending + c->pending_len, data, length);
  c->pending_len += length;
  return 0;
}

static void read_some(Conn *c) {
  size_t space = ARENA_BYTES - pump.arena_used;
  if (space < READ_MIN || pump.count >= MAX_EVENTS - 1) return;
  if (space > READ_MAX) space = READ_MAX;
  ssize_t n;
  do n = read(c->fd, pump.arena + pump.arena_used, space);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    push_event(c->id, EV_DATA, pump.arena_used, (size_t)n);
    pump.arena_used += (size_t)n;
    if (++c->reads == OWN_POLL_AT_READ) {
      if (c->no_delay_later) set_no_delay(c->fd);
      if (c->own == NULL) own_poll(c);
    }
  } else if (n == 0) {
    c->peer_done = 1;
    update_poll(c);
    if (c->shut) {
      close_conn(c);
      push_event(c->id, EV_CLOSED, 0, 0);
    } else {
      push_event(c->id, EV_EOF, 0, 0);
    }
  } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
    fail(c, errno);
  }
}

/* One ready socket (the set is level-triggered: one skipped here comes back next turn). */
static void on_ready(Conn *c, uint32_t ready) {
  if (ready & EPOLLERR) {
    /* The socket knows the cause (a reset, mostly). */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) err = EBADF;
    fail(c, err);
    return;
  }
  /* A hang-up is reported to what the socket waits for: the read or send finds out what it is. */
  int events = (ready & EPOLLIN ? UV_READABLE : 0) | (ready & EPOLLOUT ? UV_WRITABLE : 0);
  if (ready & EPOLLHUP) events |= c->mask;
  if (events & UV_WRITABLE) {
    int sent = flush_pending(c);
    if (sent < 0) return fail(c, -sent);
    if (sent == 0) return;
    if (c->ending) {
      if (finish_end(c)) push_event(c->id, EV_CLOSED, 0, 0);
      return;
    }
    push_event(c->id, EV_DRAIN, 0, 0);
    update_poll(c);
    return;
  }
  if (events & UV_READABLE) read_some(c);
}

static void on_own_poll(uv_poll_t *handle, int status, int events) {
  Conn *c = handle->data;
  if (c->closing) return;
  if (pump.count >= MAX_EVENTS - 2) {
    /* No room to report: this turn's callback runs first. An error stopped the handle, so it
     * is polled again to come back next turn (the rest is level-triggered anyway). */
    if (status < 0) {
      c->mask = 0;
      update_poll(c);
    }
    return;
  }
  on_ready(c, status < 0 ? EPOLLERR : (events & UV_READABLE ? EPOLLIN : 0) | (events & UV_WRITABLE ? EPOLLOUT : 0));
}

static void on_epoll(uv_poll_t *handle, int status, int events) {
  (void)handle, (void)status, (void)events;
  struct epoll_event ready[WAIT_BATCH];
  /* A few batches at most: a socket still ready after its turn is reported again, and the
   * rest waits for the next turn (as libuv bounds its own rounds). */
  for (int round = 0; round < 4; round++) {
    /* Room for every ready socket's event and arena for its read; without it, this turn's
     * callback runs first and the rest stays ready in the set. */
    int room = MAX_EVENTS - 2 - pump.count;
    if (room <= 0 || ARENA_BYTES - pump.arena_used < READ_MIN) return;
    int n;
    do n = epoll_wait(pump.epfd, ready, room < WAIT_BATCH ? room : WAIT_BATCH, 0);
    while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
      uint32_t tag = ready[i].data.u32;
      if (tag & LISTENER_TAG) {
        accept_some((int)(tag & ~LISTENER_TAG));
        continue;
      }
      Conn *c = pump.conns[tag];
      if (c != NULL && !c->closing && c->mask != 0) on_ready(c, ready[i].events);
    }
    if (n < WAIT_BATCH) return;
  }
}

/* After the poll phase: one call into JavaScript with every event of the turn. */
static void on_check(uv_check_t *handle) {
  (void)handle;
  if (pump.count == 0) {
    drop_lazy();
    free_closed();
    return;
  }
  napi_env env = pump.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, resource, argv[1], result;
  int count = pump.count;
  if (napi_get_reference_value(env, pump.callback, &callback) == napi_ok &&
      napi_get_reference_value(env, pump.resource, &resource) == napi_ok &&
      napi_create_int32(env, count, &argv[0]) == napi_ok) {
    pump.count = 0;
    pump.arena_used = 0;
    if (napi_make_callback(env, pump.context, resource, callback, 1, argv, &result) == napi_pending_exception) {
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
  drop_lazy();
  free_closed();
}

static Conn *conn_arg(napi_env env, napi_value value) {
  int32_t id;
  if (napi_get_value_int32(env, value, &id) != napi_ok || id < 0 || id >= pump.capacity) return NULL;
  Conn *c = pump.conns[id];
  return c == NULL || c->closing ? NULL : c;
}

static napi_value int_result(napi_env env, int value) {
  napi_value result;
  CHECK(napi_create_int32(env, value, &result));
  return result;
}

static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1], arena, events_buffer, events, pair, name;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (pump.open) {
    napi_throw_error(env, NULL, "socket pump already open");
    return NULL;
  }
  void *events_data;
  CHECK(napi_create_buffer(env, ARENA_BYTES, (void **)&pump.arena, &arena));
  CHECK(napi_create_arraybuffer(env, MAX_EVENTS * 4 * sizeof(int32_t), &events_data, &events_buffer));
  CHECK(napi_create_typedarray(env, napi_int32_array, MAX_EVENTS * 4, events_buffer, 0, &events));
  pump.events = events_data;
  CHECK(napi_create_reference(env, args[0], 1, &pump.callback));
  CHECK(napi_create_reference(env, arena, 1, &pump.arena_ref));
  CHECK(napi_create_reference(env, events, 1, &pump.events_ref));
  CHECK(napi_create_object(env, &pair));
  CHECK(napi_create_reference(env, pair, 1, &pump.resource));
  CHECK(napi_create_string_utf8(env, "distkit.socketPump", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, pair, name, &pump.context));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  pump.loop = loop;
  pump.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (pump.epfd < 0) return throw_errno(env, errno, "epoll_create1", "socket pump");
  if (uv_poll_init(loop, &pump.epoll, pump.epfd) != 0) {
    close(pump.epfd);
    return throw_errno(env, EINVAL, "uv_poll_init", "socket pump");
  }
  uv_poll_start(&pump.epoll, UV_READABLE, on_epoll);
  uv_unref((uv_handle_t *)&pump.epoll);
  uv_check_init(loop, &pump.check);
  uv_check_start(&pump.check, on_check);
  uv_unref((uv_handle_t *)&pump.check);
  for (int i = 0; i < MAX_LISTENERS; i++) pump.listeners[i] = -1;
  pump.reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
  pump.env = env;
  pump.open = 1;
  CHECK(napi_create_array_with_length(env, 2, &pair));
  CHECK(napi_set_element(env, pair, 0, arena));
  CHECK(napi_set_element(env, pair, 1, events));
  return pair;
}

/* A connection of the pump on `fd` (taken: closed on failure); NULL with errno set on failure.
 * It waits for nothing yet (update_poll starts it). */
static Conn *new_conn(int fd) {
  if (pump.free_count == 0) {
    int capacity = pump.capacity == 0 ? 64 : 2 * pump.capacity;
    Conn **conns = realloc(pump.conns, capacity * sizeof *conns);
    int *free_ids = conns == NULL ? NULL : realloc(pump.free_ids, capacity * sizeof *free_ids);
    if (conns != NULL) pump.conns = conns;
    if (free_ids == NULL) goto no_memory;
    pump.free_ids = free_ids;
    for (int i = capacity - 1; i >= pump.capacity; i--) {
      pump.conns[i] = NULL;
      pump.free_ids[pump.free_count++] = i;
    }
    pump.capacity = capacity;
  }
  /* Every socket may close within one turn: room for all of them in the closed list. */
  if (pump.closed_cap < pump.capacity) {
    Conn **closed = realloc(pump.closed, pump.capacity * sizeof *closed);
    if (closed == NULL) goto no_memory;
    pump.closed = closed;
    Conn **lazy = realloc(pump.lazy, pump.capacity * sizeof *lazy);
    if (lazy == NULL) goto no_memory;
    pump.lazy = lazy;
    pump.closed_cap = pump.capacity;
  }
  Conn *c = calloc(1, sizeof *c);
  if (c == NULL) goto no_memory;
  c->fd = fd;
  c->id = pump.free_ids[--pump.free_count];
  pump.conns[c->id] = c;
  return c;
no_memory:
  close(fd);
  errno = ENOMEM;
  return NULL;
}

/* Refuses one waiting connection when fds ran out (see reserve_fd); 0 when none was waiting. */
static int refuse_one(int listen_fd) {
  if (pump.reserve_fd < 0) return 0;
  close(pump.reserve_fd);
  int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  pump.reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
  return fd >= 0;
}

/* The peer as the accepted event carries it (see the top): its length. */
static size_t describe_peer(unsigned char *out, int listener, const struct sockaddr_storage *peer) {
  out[0] = (unsigned char)listener;
  char *text = (char *)out + 4;
  size_t length = 0;
  if (peer->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
    out[1] = 4;
    uint16_t port = ntohs(in->sin_port);
    memcpy(out + 2, &port, 2);
    if (inet_ntop(AF_INET, &in->sin_addr, text, INET6_ADDRSTRLEN) != NULL) length = strlen(text);
  } else if (peer->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
    out[1] = 6;
    uint16_t port = ntohs(in6->sin6_port);
    memcpy(out + 2, &port, 2);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, text, INET6_ADDRSTRLEN) != NULL) length = strlen(text);
  } else {
    out[1] = 0;
    out[2] = out[3] = 0;
  }
  return 4 + length;
}

/* Takes the connections waiting on one listener: each is reported, then read at once. */
static void accept_some(int listener) {
  int listen_fd = pump.listeners[listener];
  for (int taken = 0; taken < ACCEPT_BATCH && listen_fd >= 0; taken++) {
    /* Room for the accepted event, a read's event and a close, and the peer's text. */
    if (pump.count >= MAX_EVENTS - 4 || ARENA_BYTES - pump.arena_used < ACCEPT_INFO + READ_MIN) return;
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept4(listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && refuse_one(listen_fd)) continue;
      return; /* EAGAIN: none left; anything else: the next wake-up tries again */
    }
    Conn *c = new_conn(fd);
    if (c == NULL) continue;
    c->sole = 1;
    /* Nagle cannot hold a connection's first answer (nothing of ours is unacknowledged, and
     * Linux holds a short segment only behind another short one): a connection per request
     * never needs TCP_NODELAY, a persistent one gets it before its second answer. */
    c->no_delay_later = peer.ss_family == AF_INET || peer.ss_family == AF_INET6;
    size_t length = describe_peer(pump.arena + pump.arena_used, listener, &peer);
    push_event(c->id, EV_ACCEPTED, pump.arena_used, length);
    pump.arena_used += length;
    read_some(c);
    update_poll(c);
  }
}

static napi_value Adopt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int32_t fd;
  bool no_delay = false;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_int32(env, args[0], &fd));
  if (argc > 1) CHECK(napi_get_value_bool(env, args[1], &no_delay));
  if (!pump.open) {
    napi_throw_error(env, NULL, "socket pump not open");
    return NULL;
  }
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) return throw_errno(env, errno, "dup", "socket");
  if (no_delay) set_no_delay(own);
  Conn *c = new_conn(own);
  if (c == NULL) return throw_errno(env, errno, "adopt", "socket");
  update_poll(c);
  return int_result(env, c->id);
}

/* The int32 first argument of a call: 1, or 0 with an exception pending. */
static int int_arg(napi_env env, napi_callback_info info, int32_t *value) {
  size_t argc = 1;
  napi_value args[1];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, args[0], value) != napi_ok) {
    napi_throw_type_error(env, NULL, "an integer argument is required");
    return 0;
  }
  return 1;
}

/* A listening socket's fd, made non-blocking (an inherited one may not be), or -errno. */
static int listen_socket(int fd, int backlog) {
  if (backlog > 0 && listen(fd, backlog) != 0) return -errno;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -errno;
  return fd;
}

/* A new socket bound to `address` and listening (its fd), or -errno. */
static napi_value bound_socket(napi_env env, const struct sockaddr *address, socklen_t length, int backlog) {
  int fd = socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_result(env, -errno);
  int one = 1, zero = 0;
  if (address->sa_family != AF_UNIX) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (address->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  int result = bind(fd, address, length) == 0 ? listen_socket(fd, backlog) : -errno;
  if (result < 0) close(fd);
  return int_result(env, result);
}

static napi_value BindTcp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  char host[INET6_ADDRSTRLEN];
  size_t host_len;
  int32_t port, backlog;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_string_utf8(env, args[0], host, sizeof host, &host_len));
  CHECK(napi_get_value_int32(env, args[1], &port));
  CHECK(napi_get_value_int32(env, args[2], &backlog));
  struct sockaddr_storage address;
  memset(&address, 0, sizeof address);
  socklen_t length;
  struct sockaddr_in *in = (struct sockaddr_in *)&address;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&address;
  if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    length = sizeof *in;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    length = sizeof *in6;
  } else {
    return int_result(env, -EINVAL);
  }
  return bound_socket(env, (struct sockaddr *)&address, length, backlog);
}

static napi_value BindUnix(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  struct sockaddr_un address;
  size_t path_len;
  int32_t backlog;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  CHECK(napi_get_value_string_utf8(env, args[0], NULL, 0, &path_len));
  if (path_len >= sizeof address.sun_path) return int_result(env, -ENAMETOOLONG);
  CHECK(napi_get_value_string_utf8(env, args[0], address.sun_path, sizeof address.sun_path, &path_len));
  CHECK(napi_get_value_int32(env, args[1], &backlog));
  return bound_socket(env, (struct sockaddr *)&address, sizeof address, backlog);
}

static napi_value Listen(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_arg(env, info, &fd)) return NULL;
  if (!pump.open) {
    napi_throw_error(env, NULL, "socket pump not open");
    return NULL;
  }
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0) return int_result(env, -errno);
  if (!accepting) return int_result(env, -EINVAL);
  int listener = 0;
  while (listener < MAX_LISTENERS && pump.listeners[listener] >= 0) listener++;
  if (listener == MAX_LISTENERS) return int_result(env, -EMFILE);
  int made = listen_socket(fd, 0);
  if (made < 0) return int_result(env, made);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = LISTENER_TAG | (uint32_t)listener};
  if (epoll_ctl(pump.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return int_result(env, -errno);
  pump.listeners[listener] = fd;
  /* A listener keeps the loop alive, as a net.Server does. */
  if (pump.waiting++ == 0) uv_ref((uv_handle_t *)&pump.epoll);
  return int_result(env, listener);
}

static napi_value Unlisten(napi_env env, napi_callback_info info) {
  int32_t listener;
  if (!int_arg(env, info, &listener)) return NULL;
  if (listener < 0 || listener >= MAX_LISTENERS || pump.listeners[listener] < 0) return NULL;
  int fd = pump.listeners[listener];
  pump.listeners[listener] = -1;
  epoll_ctl(pump.epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  if (--pump.waiting == 0) uv_unref((uv_handle_t *)&pump.epoll);
  return NULL;
}

static napi_value SockName(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t fd;
  if (!int_arg(env, info, &fd)) return NULL;
  struct sockaddr_storage address;
  socklen_t length = sizeof address;
  char text[INET6_ADDRSTRLEN + 16] = "";
  char host[INET6_ADDRSTRLEN];
  if (getsockname(fd, (struct sockaddr *)&address, &length) == 0) {
    if (address.ss_family == AF_INET) {
      const struct sockaddr_in *in = (const struct sockaddr_in *)&address;
      if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host) != NULL) snprintf(text, sizeof text, "%s:%u", host, ntohs(in->sin_port));
    } else if (address.ss_family == AF_INET6) {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&address;
      if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host) != NULL) snprintf(text, sizeof text, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
  }
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value Write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  unsigned char *data;
  size_t size;
  uint32_t length;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  Conn *c = conn_arg(env, args[0]);
  if (c == NULL) return int_result(env, -EPIPE);
  CHECK(napi_get_buffer_info(env, args[1], (void **)&data, &size));
  CHECK(napi_get_value_uint32(env, args[2], &length));
  if (length > size) length = (uint32_t)size;
  size_t sent = 0;
  if (c->pending_len == c->pending_off) {
    while (sent < length) {
      ssize_t n = send(c->fd, data + sent, length - sent, MSG_NOSIGNAL);
      if (n >= 0) sent += (size_t)n;
      else if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      else if (errno != EINTR) {
        int err = errno;
        close_conn(c);
        return int_result(env, -err);
      }
    }
    if (sent == length) return int_result(env, 1);
  }
  int queued = queue_bytes(c, data + sent, length - sent);
  if (queued < 0) {
    close_conn(c);
    return int_result(env, queued);
  }
  update_poll(c);
  return int_result(env, 0);
}

static napi_value End(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  Conn *c = conn_arg(env, args[0]);
  if (c == NULL) return int_result(env, 1);
  c->ending = 1;
  if (c->pending_len > c->pending_off) return int_result(env, 0);
  return int_result(env, finish_end(c));
}

static napi_value Pause(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  bool paused;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_bool(env, args[1], &paused));
  Conn *c = conn_arg(env, args[0]);
  if (c != NULL) {
    c->paused = paused;
    update_poll(c);
  }
  return NULL;
}

static napi_value Destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  Conn *c = conn_arg(env, args[0]);
  if (c != NULL) close_conn(c);
  return NULL;
}

int register_socket_pump(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } calls[] = {
      {"pumpOpen", Open}, {"pumpAdopt", Adopt}, {"pumpWrite", Write},
      {"pumpEnd", End},   {"pumpPause", Pause}, {"pumpDestroy", Destroy},
      {"pumpBindTcp", BindTcp}, {"pumpBindUnix", BindUnix}, {"pumpListen", Listen},
      {"pumpUnlisten", Unlisten}, {"pumpSockName", SockName},
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, calls[i].name, NAPI_AUTO_LENGTH, calls[i].fn, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, calls[i].name, fn) != napi_ok)
      return -1;
  }
  return 0;
}
