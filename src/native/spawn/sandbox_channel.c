/*
 * The daemon's side of the sandbox host's socket (sandbox_host.c has the protocol): the pair of
 * sockets, a job sent with its three descriptors and the host's answer (the job's pidfd), the
 * pipe a job's wait status comes back on, and SIGKILL through a pidfd.
 *
 *   hostChannel() -> [daemonFd, hostFd]: a SOCK_SEQPACKET pair; daemonFd close-on-exec, hostFd
 *     not (spawn's keepFd puts it at the host's fd 3).
 *   hostReply(fd, timeoutMs) -> the host's int32 word (0: ready), waiting at most timeoutMs;
 *     throws ETIMEDOUT, or EPIPE when the host is gone.
 *   hostRun(fd, message, stdoutFd, stderrFd, statusFd, timeoutMs) -> the job's pidfd: sends the
 *     job (a Buffer) with the three descriptors, waits for the answer; throws with syscall "sendmsg"
 *     (the job was not sent), "clone" (the host's errno: it refused the job) or "recvmsg" (no
 *     answer in time, or a broken one: the job may be running).
 *   statusPipe() -> [readFd, writeFd], both close-on-exec, the read end non-blocking.
 *   pidfdKill(pidfd): SIGKILL to the process (a job's pid 1: its whole pid namespace dies); a
 *     process already gone is no error.
 *   hostProgram() -> the path of distkit-sandbox-host, built beside this addon.
 *   identities(paths) -> each path's identity (lstat: "dev:ino:size:mtime:ctime", times to the
 *     nanosecond), "absent" for one that cannot be looked at: the evidence a remembered compiler
 *     finding rests on (compiler_mounts.ts), checked in every --inetd process (~0.3 ms through
 *     Node's lstat for a dozen paths, measured).
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#include "socket_pump.h"

static int fd_arg(napi_env env, napi_value value, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok && *out >= 0;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One message from the host: its int32 word and, if it sent one, a descriptor (else -1). 0, or an errno. */
static int receive(int fd, int timeout_ms, int32_t *word, int *passed) {
  int64_t deadline = now_ms() + timeout_ms;
  *passed = -1;
  for (;;) {
    int64_t left = deadline - now_ms();
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, left < 0 ? 0 : (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ETIMEDOUT;
    union {
      struct cmsghdr head;
      char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {word, sizeof *word};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space};
    ssize_t got = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) return errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) memcpy(passed, CMSG_DATA(c), sizeof *passed);
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      /* The job's pidfd did not arrive (no descriptor left here: EMFILE), or more came than one:
         the job may be running with no handle on it. Not an answer. */
      if (*passed >= 0) close(*passed);
      *passed = -1;
      return EPROTO;
    }
    if (got != (ssize_t)sizeof *word) {
      if (*passed >= 0) close(*passed);
      *passed = -1;
      return EPIPE; /* EOF: the host (or its bwrap) exited */
    }
    return 0;
  }
}

static napi_value HostChannel(napi_env env, napi_callback_info info) {
  (void)info;
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return throw_errno(env, errno, "socketpair", "sandbox host");
  /* A pump job's message (its binds) may be large; the host reads up to 1 MiB. */
  int size = 2 << 20;
  (void)setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  (void)setsockopt(pair[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  (void)fcntl(pair[1], F_SETFD, 0);
  napi_value result, a, b;
  if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_int32(env, pair[0], &a) != napi_ok ||
      napi_create_int32(env, pair[1], &b) != napi_ok || napi_set_element(env, result, 0, a) != napi_ok || napi_set_element(env, result, 1, b) != napi_ok) {
    close(pair[0]);
    close(pair[1]);
    napi_throw_error(env, NULL, "hostChannel: cannot make the result");
    return NULL;
  }
  return result;
}

static napi_value HostReply(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int32_t fd, timeout;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 2 || !fd_arg(env, args[0], &fd) || !fd_arg(env, args[1], &timeout)) {
    napi_throw_type_error(env, NULL, "hostReply(fd, timeoutMs)");
    return NULL;
  }
  int32_t word;
  int passed;
  int err = receive(fd, timeout, &word, &passed);
  if (err != 0) return throw_errno(env, err, "recvmsg", "sandbox host");
  if (passed >= 0) close(passed);
  napi_value result;
  napi_create_int32(env, word, &result);
  return result;
}

static napi_value HostRun(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6];
  int32_t fd, fds[3], timeout;
  void *data = NULL;
  size_t length = 0;
  bool is_buffer = false;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 6 || !fd_arg(env, args[0], &fd) ||
      napi_is_buffer(env, args[1], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, args[1], &data, &length) != napi_ok ||
      !fd_arg(env, args[2], &fds[0]) || !fd_arg(env, args[3], &fds[1]) || !fd_arg(env, args[4], &fds[2]) || !fd_arg(env, args[5], &timeout)) {
    napi_throw_type_error(env, NULL, "hostRun(fd, message, stdoutFd, stderrFd, statusFd, timeoutMs)");
    return NULL;
  }
  union {
    struct cmsghdr head;
    char space[CMSG_SPACE(sizeof fds)];
  } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {data, length};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t sent;
  do {
    sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return throw_errno(env, errno, "sendmsg", "sandbox host");
  int32_t word;
  int pidfd;
  int err = receive(fd, timeout, &word, &pidfd);
  /* The host's own refusal (its clone failed) is "clone"; no answer, or one without the job's
     pidfd, is "recvmsg": the job may then be running, unseen. */
  if (err == 0 && word != 0) return throw_errno(env, word, "clone", "sandbox host job");
  if (err == 0 && pidfd < 0) err = EPROTO;
  if (err != 0) {
    if (pidfd >= 0) close(pidfd);
    return throw_errno(env, err, "recvmsg", "sandbox host job");
  }
  napi_value result;
  napi_create_int32(env, pidfd, &result);
  return result;
}

static napi_value StatusPipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, errno, "pipe2", "status");
  (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
  napi_value result, a, b;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, fds[0], &a);
  napi_create_int32(env, fds[1], &b);
  napi_set_element(env, result, 0, a);
  napi_set_element(env, result, 1, b);
  return result;
}

/* The sandbox host's executable: beside this addon (node-gyp builds both in build/Release). Found
   by dladdr, as require.resolve is missing in the startup snapshot. */
static napi_value HostProgram(napi_env env, napi_callback_info info) {
  (void)info;
  Dl_info self;
  if (dladdr((void *)&HostProgram, &self) == 0 || self.dli_fname == NULL) {
    napi_throw_error(env, NULL, "hostProgram: dladdr cannot name this addon");
    return NULL;
  }
  char path[PATH_MAX];
  const char *slash = strrchr(self.dli_fname, '/');
  int dir = slash == NULL ? 1 : (int)(slash - self.dli_fname);
  if (snprintf(path, sizeof path, "%.*s/distkit-sandbox-host", dir, slash == NULL ? "." : self.dli_fname) >= (int)sizeof path) return throw_errno(env, ENAMETOOLONG, "hostProgram", self.dli_fname);
  napi_value result;
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &result);
  return result;
}

static napi_value PidfdKill(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 1 || !fd_arg(env, args[0], &fd)) {
    napi_throw_type_error(env, NULL, "pidfdKill(pidfd)");
    return NULL;
  }
  if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) != 0 && errno != ESRCH) return throw_errno(env, errno, "pidfd_send_signal", "job");
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

int format_identity(char *out, size_t size, const struct stat *st) {
  return snprintf(out, size, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino, (long long)st->st_size,
                  (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

/* identities(paths): each path's identity (lstat, format_identity), 'absent' where it cannot be looked at. */
static napi_value Identities(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  bool array = false;
  uint32_t count;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 1 || napi_is_array(env, args[0], &array) != napi_ok || !array
      || napi_get_array_length(env, args[0], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "identities(paths)");
    return NULL;
  }
  napi_value result;
  napi_create_array_with_length(env, count, &result);
  for (uint32_t i = 0; i < count; i++) {
    char name[PATH_MAX], id[128];
    size_t length;
    napi_value item;
    if (napi_get_element(env, args[0], i, &item) != napi_ok || napi_get_value_string_utf8(env, item, name, sizeof name, &length) != napi_ok) {
      napi_throw_type_error(env, NULL, "identities: paths are strings");
      return NULL;
    }
    struct stat st;
    if (length >= sizeof name - 1 || lstat(name, &st) != 0) snprintf(id, sizeof id, "absent");
    else format_identity(id, sizeof id, &st);
    napi_value text;
    napi_create_string_utf8(env, id, NAPI_AUTO_LENGTH, &text);
    napi_set_element(env, result, i, text);
  }
  return result;
}

int register_sandbox_channel(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"hostChannel", HostChannel}, {"hostReply", HostReply}, {"hostRun", HostRun}, {"statusPipe", StatusPipe}, {"pidfdKill", PidfdKill}, {"hostProgram", HostProgram}, {"identities", Identities}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn) != napi_ok || napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return -1;
  }
  return 0;
}
