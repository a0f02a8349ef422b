/*
 * socket_accept: the listening sockets of the socket pump (socket_pump.c), accepted from in C.
 *
 * A connection per request (Apache's mod_socache_dc) paid Node's accept path on every request: a
 * libuv accept, a TCPWrap and a net.Socket built, a JS 'connection' event, then the fd handed to
 * the pump and the socket torn down. Here the pump polls the listening sockets in its own epoll
 * set, accepts with accept4, reads the new connection at once (its request is mostly there by
 * then) and reports both in the same turn's call into JavaScript.
 *
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
 *
 * Out of fds (EMFILE), a waiting connection is accepted on a reserve fd and closed at once, as
 * libuv does, so the peer hears a close rather than waiting, and the listener does not spin.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "socket_pump.h"
#include "socket_pump_core.h"

/* Refuses one waiting connection when fds ran out (see reserve_fd); 0 when none was waiting. */
static int refuse_one(int listen_fd) {
  /* A reserve that could not be reopened last time is tried again: without it the listener,
   * level-triggered, would be reported ready at every turn and never emptied. */
  if (pump.reserve_fd < 0) pump.reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
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
void accept_some(int listener) {
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

int register_socket_accept(napi_env env, napi_value exports) {
  static const PumpCall calls[] = {
      {"pumpBindTcp", BindTcp}, {"pumpBindUnix", BindUnix}, {"pumpListen", Listen},
      {"pumpUnlisten", Unlisten}, {"pumpSockName", SockName},
  };
  return export_calls(env, exports, calls, sizeof calls / sizeof calls[0]);
}
