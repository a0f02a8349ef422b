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
 *   open(callback) -> [arena: Buffer, events: Int32Array, out: Buffer, sends: Int32Array]
 *     Once per process. After each poll phase that saw events, callback(count) runs with
 *     `count` events in `events`, four ints each: [id, kind, offset, length]. kind 1 = data:
 *     arena[offset, offset+length) (valid during the callback only); 2 = the peer ended its
 *     side; 3 = error, length = errno, the socket is already closed; 4 = drained: every byte
 *     queued by write() is sent (reading resumes); 5 = closed after end() (see end()).
 *   adopt(fd, noDelay) -> id      takes a dup of a connected socket's fd (the caller closes
 *     its own) and starts reading. noDelay sets TCP_NODELAY.
 *   bindTcp, bindUnix, listen, unlisten, sockName: listening sockets the pump accepts from
 *     itself (event 6 = accepted), in socket_accept.c.
 *   write(id, buffer, length) -> 1 all sent | 0 queued (the rest is kept here, reading stops
 *     until event 4) | -errno (the socket is closed, no event follows).
 *   end(id) -> 1 closed now (the peer had ended) | 0 later: once queued bytes are sent, FIN
 *     (shutdown SHUT_WR), then input is read and reported until the peer ends, and the socket
 *     closes with event 5 (closing with unread input would send a reset and lose our answers).
 *   send(count)                   the turn's writes and ends in one call: `sends` holds `count`
 *     entries of four ints [id, offset, length, result]: length >= 0 sends out[offset,
 *     offset+length) as write() would, length -1 is end(); each result is what that call returns.
 *     JavaScript gathers every socket's answers of a turn in `out` and crosses into C once for all
 *     of them, not once per socket (a call into the addon costs about what a small send() does).
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "socket_pump.h"
#include "socket_pump_core.h"

PumpState pump;



void push_event(int id, int kind, size_t offset, size_t length) {
  int32_t *e = pump.events + 4 * pump.count++;
  e[0] = id;
  e[1] = kind;
  e[2] = (int32_t)offset;
  e[3] = (int32_t)length;
}

void set_no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Frees the sockets closed since the last call: their ids are free from now on. */
static void free_closed(void) {
  for (int i = 0; i < pump.closed_count; i++) {
    Conn *c = pump.closed[i];
    pump.conns[c->id] = NULL;
    pump.free_ids[pump.free_count++] = c->id;
    link_free(c->link);
    free(c->pending);
    free(c);
  }
  pump.closed_count = 0;
}

static void on_own_poll(uv_poll_t *handle, int status, int events);

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
void update_poll(Conn *c) {
  if (c->closing) return;
  /* A Redis link reads its replies while its commands wait to be sent (Redis answers as it reads). */
  if (c->link != NULL) return set_mask(c, UV_READABLE | (c->pending_len > c->pending_off ? UV_WRITABLE : 0));
  set_mask(c, c->pending_len > c->pending_off ? UV_WRITABLE : (!c->paused && !c->peer_done ? UV_READABLE : 0));
}

void fail_conn(Conn *c, int err) {
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

void read_some(Conn *c) {
  if (c->link != NULL) {
    link_read(c);
    if (!c->closing && ++c->reads == OWN_POLL_AT_READ && c->own == NULL) own_poll(c);
    return;
  }
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
    fail_conn(c, errno);
  }
}

/* One ready socket (the set is level-triggered: one skipped here comes back next turn). */
static void on_ready(Conn *c, uint32_t ready) {
  if (ready & EPOLLERR) {
    /* The socket knows the cause (a reset, mostly). */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) err = EBADF;
    fail_conn(c, err);
    return;
  }
  /* A hang-up is reported to what the socket waits for: the read or send finds out what it is. */
  int events = (ready & EPOLLIN ? UV_READABLE : 0) | (ready & EPOLLOUT ? UV_WRITABLE : 0);
  if (ready & EPOLLHUP) events |= c->mask;
  if (c->link != NULL) {
    if (events & UV_WRITABLE) {
      int sent = flush_pending(c);
      if (sent < 0) return fail_conn(c, -sent);
      if (sent == 1) update_poll(c);
    }
    if ((events & UV_READABLE) && !c->closing) read_some(c);
    return;
  }
  if (events & UV_WRITABLE) {
    int sent = flush_pending(c);
    if (sent < 0) return fail_conn(c, -sent);
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
      /* A listener's entry may have used up the room (an event or two per connection it
       * accepted): the entries after it stay ready in the (level-triggered) set for next turn. */
      if (pump.count >= MAX_EVENTS - 2) continue;
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
  /* Again while Redis links parse replies they had no room for in this turn's events. */
  for (int count = pump.count; count > 0; count = link_backlog()) {
    if (napi_get_reference_value(env, pump.callback, &callback) != napi_ok ||
        napi_get_reference_value(env, pump.resource, &resource) != napi_ok ||
        napi_create_int32(env, count, &argv[0]) != napi_ok)
      break;
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

napi_value int_result(napi_env env, int value) {
  napi_value result;
  CHECK(napi_create_int32(env, value, &result));
  return result;
}

/* The int32 first argument of a call: 1, or 0 with an exception pending. */
int int_arg(napi_env env, napi_callback_info info, int32_t *value) {
  size_t argc = 1;
  napi_value args[1];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, args[0], value) != napi_ok) {
    napi_throw_type_error(env, NULL, "an integer argument is required");
    return 0;
  }
  return 1;
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
  napi_value out, sends_buffer, sends;
  void *sends_data;
  CHECK(napi_create_buffer(env, OUT_BYTES, (void **)&pump.out, &out));
  CHECK(napi_create_arraybuffer(env, MAX_SENDS * 4 * sizeof(int32_t), &sends_data, &sends_buffer));
  CHECK(napi_create_typedarray(env, napi_int32_array, MAX_SENDS * 4, sends_buffer, 0, &sends));
  pump.sends = sends_data;
  CHECK(napi_create_reference(env, out, 1, &pump.out_ref));
  CHECK(napi_create_reference(env, sends, 1, &pump.sends_ref));
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
  CHECK(napi_create_array_with_length(env, 4, &pair));
  CHECK(napi_set_element(env, pair, 0, arena));
  CHECK(napi_set_element(env, pair, 1, events));
  CHECK(napi_set_element(env, pair, 2, out));
  CHECK(napi_set_element(env, pair, 3, sends));
  return pair;
}

/* A connection of the pump on `fd` (taken: closed on failure); NULL with errno set on failure.
 * It waits for nothing yet (update_poll starts it). */
Conn *new_conn(int fd) {
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

/* Sends bytes now, queueing what the socket does not take: 1 all sent, 0 queued (reading stops
 * until the drain event), -errno (the socket is closed, no event follows). */
int send_or_queue(Conn *c, const unsigned char *data, size_t length) {
  size_t sent = 0;
  if (c->pending_len == c->pending_off) {
    while (sent < length) {
      ssize_t n = send(c->fd, data + sent, length - sent, MSG_NOSIGNAL);
      if (n >= 0) sent += (size_t)n;
      else if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      else if (errno != EINTR) {
        int err = errno;
        close_conn(c);
        return -err;
      }
    }
    if (sent == length) return 1;
  }
  int queued = queue_bytes(c, data + sent, length - sent);
  if (queued < 0) {
    close_conn(c);
    return queued;
  }
  update_poll(c);
  return 0;
}

/* end(): 1 closed now, 0 later (see the top). */
static int end_conn(Conn *c) {
  c->ending = 1;
  if (c->pending_len > c->pending_off) return 0;
  return finish_end(c);
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
  return int_result(env, send_or_queue(c, data, length));
}

static napi_value End(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  Conn *c = conn_arg(env, args[0]);
  if (c == NULL) return int_result(env, 1);
  return int_result(env, end_conn(c));
}

/* The sends of a turn, in order (see the top): each entry's result in its fourth int. */
static napi_value Send(napi_env env, napi_callback_info info) {
  int32_t count;
  if (!int_arg(env, info, &count)) return NULL;
  if (count < 0 || count > MAX_SENDS) count = count < 0 ? 0 : MAX_SENDS;
  for (int i = 0; i < count; i++) {
    int32_t *e = pump.sends + 4 * i;
    int32_t id = e[0], offset = e[1], length = e[2];
    Conn *c = id >= 0 && id < pump.capacity ? pump.conns[id] : NULL;
    if (c == NULL || c->closing) e[3] = length < 0 ? 1 : -EPIPE;
    else if (length < 0) e[3] = end_conn(c);
    else if (offset < 0 || (size_t)offset + (size_t)length > OUT_BYTES) e[3] = -EINVAL;
    else e[3] = send_or_queue(c, pump.out + offset, (size_t)length);
  }
  return NULL;
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

int export_calls(napi_env env, napi_value exports, const PumpCall *calls, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value fn;
    if (napi_create_function(env, calls[i].name, NAPI_AUTO_LENGTH, calls[i].fn, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, calls[i].name, fn) != napi_ok)
      return -1;
  }
  return 0;
}

int register_socket_pump(napi_env env, napi_value exports) {
  static const PumpCall calls[] = {
      {"pumpOpen", Open}, {"pumpAdopt", Adopt}, {"pumpWrite", Write},
      {"pumpEnd", End},   {"pumpPause", Pause}, {"pumpDestroy", Destroy},
      {"pumpSend", Send},
  };
  if (export_calls(env, exports, calls, sizeof calls / sizeof calls[0]) != 0) return -1;
  if (register_redis_link(env, exports) != 0) return -1;
  return register_socket_accept(env, exports);
}
