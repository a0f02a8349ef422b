/*
 * distkit_spawn: starts a compiler the way a small C daemon would, for distccd's hot path.
 *
 * Node's child_process forks the whole daemon (page tables of a 50 MB process, then a
 * copy-on-write fault on every page the parent touches next) and wires stdio through pipes:
 * about 1.5 ms of the event loop per compiler, more than the rest of a job together. vfork (what
 * glibc's posix_spawn does, clone(CLONE_VM|CLONE_VFORK)) costs the same for any parent size, and
 * the compiler's stdout/stderr go straight to files the daemon opened (as distccd does). It is
 * vfork itself rather than posix_spawn because posix_spawn cannot set resource limits: the
 * sandbox's limits were an extra program (prlimit) exec'd before bubblewrap on every job.
 *
 *   spawn(file, argv, env, cwd, stdoutFd, stderrFd[, limits]) -> pid
 *     The child gets stdin /dev/null, stdout/stderr on the given fds, no other fd (closefrom 3:
 *     no listener or client socket leaks into a compiler), its own session and process group
 *     (so a timeout kills gcc and every cc1/as it started), default signal dispositions and an
 *     empty signal mask (Node ignores SIGPIPE, which exec would otherwise pass on), and cwd.
 *     limits = { as, cpu, fsize, nproc } (bytes, seconds, bytes, processes; each optional) are
 *     set as soft and hard RLIMIT_AS, _CPU, _FSIZE, _NPROC of the child before exec.
 *     A bare file name is searched in the PATH of `env` (the compiler's, not the daemon's), like
 *     execvp. Errors throw an Error with `errno` (positive) and `syscall`; a step that fails in
 *     the child (open, dup2, chdir, setrlimit, execve) is reported the same way, the child reaped.
 *   spawn(..., limits, keepFd): keepFd (>= 3) is left open in the child as its fd 3 (the sandbox
 *     host's socket, sandbox_channel.c); limits may then be undefined.
 *   reap(pid) -> undefined while it runs, else the raw wait status (core-dump bit included).
 *   watch(pid, callback) -> true, or false where the kernel has no pidfd_open (before 5.3)
 *     Reaps `pid` when it exits and calls callback(status), or callback(error) if waitpid
 *     failed. The exit reaches the event loop as a readable pidfd, on the loop's own thread:
 *     no signal handler, no wake-up pipe, no poll of every child. The watch keeps the loop
 *     alive while the child runs.
 *   watch(pid, callback, answer) with answer = [socketFd, version, stdoutFd, stderrFd, objectPath, sandboxed?]
 *     (sandboxed 1: the child is bwrap, whose 128 + signal exit reads as that signal in STAT)
 *     The same, but first answers the distcc client on socketFd (if it is a socket), in C, the moment the compiler
 *     is reaped: DONE STAT SERR SOUT DOTO (protocol 1: DIST 0 or 1, echoed in DONE), the bodies read from
 *     the capture files and, on status 0, the object file. The exit-to-answer path is then a few
 *     syscalls instead of a cold run through JavaScript. callback(status, sent, rest): sent 1 =
 *     all of it written; 2 = the socket took only part, `rest` (a Buffer) is for the caller to
 *     write; -errno = the send failed (the client is gone); 0 = not answered here (a capture
 *     over 1 MiB, an object over 64 MiB or one that cannot be read): the caller answers as
 *     before, from the same files, which this path has not changed; also when socketFd no
 *     longer is the socket it was at watch time (closed, perhaps reused).
 *   watchStatus(statusFd, callback[, answer]): the same for a sandbox host's job
 *     (sandbox_host.c), whose raw wait status arrives as 4 bytes on the pipe statusFd (which the
 *     watch then closes); callback(error) when the pipe closes without one (the job was killed).
 *   forgoStatus(statusFd): forgo for such a job.
 *   forgo(pid) -> whether an answer was pending: the caller is about to kill the child (timeout,
 *     client gone) and will answer, or not, itself.
 *
 * Reaping is the caller's: libuv's SIGCHLD handler only waits for pids it spawned itself.
 *
 *   deferAccept(fd, seconds) sets TCP_DEFER_ACCEPT on a listening socket (Node has no
 *     setsockopt): the kernel hands a connection to accept() once its first bytes arrived (a
 *     silent one when `seconds` are over), not at the handshake, so a daemon whose clients speak
 *     first (distccd) wakes once per job. 0 turns it off. Errors throw as spawn's do.
 *
 *   The socket calls (pumpOpen, pumpAdopt, ...) are in socket_pump.c and socket_accept.c, for dc_server's connections.
 *
 *   inspectSocket(fd) -> { family, type, listening } asks the socket itself what it is, as
 *     systemd's sd_is_socket does (getsockopt SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN): family
 *     'unix' | 'inet' | 'inet6' | 'other', type 'stream' | 'dgram' | 'seqpacket' | 'other',
 *     listening true once listen() was called. It works for a socket from another network
 *     namespace, which /proc/net does not list. Errors (ENOTSOCK, EBADF) throw as spawn's do.
 *
 *   pumpOpen, pumpAdopt, pumpWrite, pumpEnd, pumpPause, pumpDestroy: dc_server's connections
 *     served from C, documented in socket_pump.c; pumpBindTcp, pumpBindUnix, pumpListen,
 *     pumpUnlisten, pumpSockName: its listening sockets, accepted from in C (socket_accept.c).
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "socket_pump.h"


napi_value throw_errno(napi_env env, int err, const char *syscall, const char *subject) {
  char text[PATH_MAX + 128];
  snprintf(text, sizeof text, "%s %s: %s", syscall, subject, strerror(err));
  napi_value message, error, number, name;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, NULL, message, &error) != napi_ok ||
      napi_create_int32(env, err, &number) != napi_ok ||
      napi_set_named_property(env, error, "errno", number) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_set_named_property(env, error, "syscall", name) != napi_ok) {
    napi_throw_error(env, NULL, text);
    return NULL;
  }
  napi_throw(env, error);
  return NULL;
}

/* A JS string as a malloc'd C string; NULL (with a pending exception) if it is not a string or holds a NUL. */
static char *string_arg(napi_env env, napi_value value, const char *what) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    char text[96];
    snprintf(text, sizeof text, "%s must be a string", what);
    napi_throw_type_error(env, NULL, text);
    return NULL;
  }
  char *out = malloc(length + 1);
  if (out == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, out, length + 1, &length);
  if (strlen(out) != length) {
    free(out);
    char text[96];
    snprintf(text, sizeof text, "%s contains a NUL byte", what);
    napi_throw_type_error(env, NULL, text);
    return NULL;
  }
  return out;
}

static void free_list(char **list) {
  if (list == NULL) return;
  for (char **p = list; *p != NULL; p++) free(*p);
  free(list);
}

/* A JS array of strings as a NULL-terminated vector. */
static char **string_list(napi_env env, napi_value value, const char *what) {
  bool is_array = false;
  uint32_t count = 0;
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array || napi_get_array_length(env, value, &count) != napi_ok) {
    char text[96];
    snprintf(text, sizeof text, "%s must be an array of strings", what);
    napi_throw_type_error(env, NULL, text);
    return NULL;
  }
  char **list = calloc((size_t)count + 1, sizeof *list);
  if (list == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    if (napi_get_element(env, value, i, &item) != napi_ok || (list[i] = string_arg(env, item, what)) == NULL) {
      free_list(list);
      return NULL;
    }
  }
  return list;
}

static int int_arg(napi_env env, napi_value value, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok;
}

/*
 * execvp's search, done before the spawn so a miss costs no clone: the first PATH entry holding
 * an executable regular file wins; EACCES if only non-executable ones were seen, else ENOENT.
 */
static int resolve(const char *file, char *const envp[], char *out, size_t size) {
  if (strchr(file, '/') != NULL) {
    if (strlen(file) >= size) return ENAMETOOLONG;
    strcpy(out, file);
    return 0;
  }
  const char *search = "/usr/local/bin:/usr/bin:/bin";
  for (char *const *e = envp; *e != NULL; e++) {
    if (strncmp(*e, "PATH=", 5) == 0) {
      search = *e + 5;
      break;
    }
  }
  int result = ENOENT;
  const char *dir = search;
  for (;;) {
    const char *end = strchrnul(dir, ':');
    size_t dlen = (size_t)(end - dir);
    /* An empty entry means the current directory, as in execvp. */
    int n = dlen == 0 ? snprintf(out, size, "%s", file) : snprintf(out, size, "%.*s/%s", (int)dlen, dir, file);
    if (n > 0 && (size_t)n < size) {
      struct stat st;
      if (access(out, X_OK) == 0) {
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) return 0;
      } else if (errno == EACCES) {
        result = EACCES;
      }
    }
    if (*end == '\0') break;
    dir = end + 1;
  }
  return result;
}

/* spawn's limits argument: RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NPROC, each unset (-1) or soft = hard = the value. */
#define SPAWN_LIMITS 4
static const int limit_resources[SPAWN_LIMITS] = {RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NPROC};
static const char *const limit_names[SPAWN_LIMITS] = {"as", "cpu", "fsize", "nproc"};

/* { as, cpu, fsize, nproc } (any may be missing) into `out`; 0 with a TypeError pending if malformed. */
static int limits_arg(napi_env env, napi_value value, rlim_t out[SPAWN_LIMITS], int *set) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_object) goto bad;
  for (int i = 0; i < SPAWN_LIMITS; i++) {
    bool has = false;
    napi_value item;
    double number;
    if (napi_has_named_property(env, value, limit_names[i], &has) != napi_ok) goto bad;
    set[i] = 0;
    if (!has) continue;
    if (napi_get_named_property(env, value, limit_names[i], &item) != napi_ok || napi_get_value_double(env, item, &number) != napi_ok ||
        !(number >= 0) || number > 9007199254740991.0 || number != (double)(uint64_t)number) {
      goto bad;
    }
    out[i] = (rlim_t)number;
    set[i] = 1;
  }
  return 1;
bad:
  napi_throw_type_error(env, NULL, "limits must be { as, cpu, fsize, nproc }, each a whole number >= 0");
  return 0;
}

/*
 * The child's side of spawn, between vfork and exec: only system calls (it shares the parent's
 * memory and another thread may hold any lock), and it never returns. What fails is left in
 * *failed for the parent, which is suspended until the exec or the exit.
 */
static void __attribute__((noreturn)) become_child(const char *path, char **argv, char **envp, const char *cwd, int out_fd, int err_fd,
                                                  const rlim_t *limits, const int *set, int keep_fd, volatile int *failed) {
  /* Default dispositions (Node ignores SIGPIPE, which exec would pass on); every handler of the
     parent is gone before the mask below lets a signal in. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) (void)sigaction(sig, &dfl, NULL); /* EINVAL for KILL, STOP and libc's own */
  int fd;
  if (setsid() < 0) goto fail;
  if ((fd = open("/dev/null", O_RDONLY)) < 0) goto fail;
  if (fd != 0 && (dup2(fd, 0) < 0 || close(fd) < 0)) goto fail;
  if (dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) goto fail;
  if (keep_fd >= 0) {
    /* dup2 onto itself would keep close-on-exec. */
    if (keep_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(keep_fd, 3) < 0) goto fail;
    closefrom(4);
  } else {
    closefrom(3);
  }
  if (chdir(cwd) < 0) goto fail;
  /* The limits are the compiler's (and the sandbox's, which passes them on): set here, between
     fork and exec, they cost no extra program (prlimit) per job. */
  for (int i = 0; i < SPAWN_LIMITS; i++) {
    struct rlimit rl = {limits[i], limits[i]};
    if (set[i] && setrlimit(limit_resources[i], &rl) < 0) goto fail;
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) goto fail;
  execve(path, argv, envp);
fail:
  *failed = errno;
  _exit(127);
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value args[8];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 6 || argc > 8) {
    napi_throw_type_error(env, NULL, "spawn(file, argv, env, cwd, stdoutFd, stderrFd[, limits[, keepFd]])");
    return NULL;
  }
  int32_t keep_fd = -1;
  napi_valuetype keep_type = napi_undefined;
  if (argc == 8) CHECK(napi_typeof(env, args[7], &keep_type));
  if (keep_type != napi_undefined && (!int_arg(env, args[7], &keep_fd) || keep_fd < 3)) {
    napi_throw_type_error(env, NULL, "keepFd must be a descriptor >= 3");
    return NULL;
  }
  int32_t out_fd, err_fd;
  if (!int_arg(env, args[4], &out_fd) || !int_arg(env, args[5], &err_fd) || out_fd < 3 || err_fd < 3) {
    napi_throw_type_error(env, NULL, "stdoutFd and stderrFd must be descriptors >= 3");
    return NULL;
  }
  rlim_t limits[SPAWN_LIMITS] = {0};
  int set[SPAWN_LIMITS] = {0};
  napi_valuetype limits_type = napi_undefined;
  if (argc >= 7) CHECK(napi_typeof(env, args[6], &limits_type));
  if (limits_type != napi_undefined && !limits_arg(env, args[6], limits, set)) return NULL;
  char *file = NULL, *cwd = NULL;
  char **argv = NULL, **envp = NULL;
  napi_value result = NULL;
  if ((file = string_arg(env, args[0], "file")) == NULL || (argv = string_list(env, args[1], "argv")) == NULL ||
      (envp = string_list(env, args[2], "env")) == NULL || (cwd = string_arg(env, args[3], "cwd")) == NULL) {
    goto done;
  }
  char path[PATH_MAX];
  int err = resolve(file, envp, path, sizeof path);
  if (err != 0) {
    throw_errno(env, err, "spawn", file);
    goto done;
  }
  /* vfork, as glibc's posix_spawn (clone CLONE_VM|CLONE_VFORK), which has no rlimit attribute.
     Every signal stays blocked until the child has reset its dispositions: a handler of the
     parent's must never run on the child's side of the shared memory. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  volatile int failed = 0;
  pid_t pid = vfork();
  if (pid == 0) become_child(path, argv, envp, cwd, out_fd, err_fd, limits, set, keep_fd, &failed);
  err = pid < 0 ? errno : failed;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid > 0 && err != 0) {
    /* It exited before exec: reap it here, so no zombie is left for nobody. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  if (err != 0) {
    throw_errno(env, err, "spawn", file);
    goto done;
  }
  napi_create_int32(env, pid, &result);

done:
  free(file);
  free(cwd);
  free_list(argv);
  free_list(envp);
  return result;
}

/* waitpid(pid, WNOHANG), retried on EINTR: the pid, 0 while it runs, or -1 with errno. */
static pid_t wait_nohang(pid_t pid, int *status) {
  pid_t got;
  do {
    got = waitpid(pid, status, WNOHANG);
  } while (got < 0 && errno == EINTR);
  return got;
}

/* The one argument of reap(pid) and forgo(pid): 1, or 0 with a TypeError pending. */
static int pid_only_arg(napi_env env, napi_callback_info info, const char *usage, int32_t *pid) {
  size_t argc = 1;
  napi_value args[1];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 1 || !int_arg(env, args[0], pid) || *pid <= 0) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

static napi_value Reap(napi_env env, napi_callback_info info) {
  int32_t pid;
  if (!pid_only_arg(env, info, "reap(pid) needs a positive pid", &pid)) return NULL;
  int status = 0;
  pid_t got = wait_nohang(pid, &status);
  if (got < 0) {
    char subject[32];
    snprintf(subject, sizeof subject, "%d", pid);
    return throw_errno(env, errno, "waitpid", subject);
  }
  napi_value result;
  if (got == 0) {
    CHECK(napi_get_undefined(env, &result));
  } else {
    CHECK(napi_create_int32(env, status, &result));
  }
  return result;
}

/* What to send the client when the compiler exits (watch's third argument). */
struct answer_plan {
  int socket, version, stdout_fd, stderr_fd;
  /* The child is bwrap (the sandbox): its exit status is translated as compiler_status says. */
  int sandboxed;
  char *object;
  /* The socket as fstat saw it when the plan was made: a descriptor closed since (the stream was
     destroyed) and perhaps reused for another file must not get the answer. */
  dev_t socket_dev;
  ino_t socket_ino;
};

/* One child being watched: its pidfd under a libuv poll handle, and the JS callback. */
struct exit_watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  pid_t pid;
  int pidfd;
  /* A sandbox host's job (watchStatus): pidfd is then its status pipe, which carries its raw wait status. */
  int status_pipe;
  struct answer_plan *plan; /* NULL: the caller answers */
  struct exit_watch *next;  /* in `planned`, while plan != NULL */
};

static void free_plan(struct answer_plan *plan) {
  if (plan == NULL) return;
  free(plan->object);
  free(plan);
}

/* Watches with an answer pending, for forgo(); the loop's thread is the only one to touch it. */
static struct exit_watch *planned;

static void drop_plan(struct exit_watch *w) {
  if (w->plan == NULL) return;
  for (struct exit_watch **p = &planned; *p != NULL; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      break;
    }
  }
  free_plan(w->plan);
  w->plan = NULL;
}

static void watch_closed(uv_handle_t *handle) {
  struct exit_watch *w = handle->data;
  drop_plan(w);
  close(w->pidfd);
  free(w);
}

/* Larger captures and objects take the caller's path (it truncates captures past 16 MiB). */
#define ANSWER_MAX_CAPTURE (1u << 20)
#define ANSWER_MAX_OBJECT (64u << 20)

/* The whole of `fd` from offset 0, if it holds at most `max` bytes: 0, or -1 to decline. */
static int slurp(int fd, size_t max, char **out, size_t *length) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) return -1;
  size_t size = (size_t)st.st_size;
  char *buf = malloc(size > 0 ? size : 1);
  if (buf == NULL) return -1;
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* shrank under us: send what is there, as a read to EOF would */
    got += (size_t)n;
  }
  *out = buf;
  *length = got;
  return 0;
}

/*
 * bwrap exits with its child's exit code, or 128 + the signal that killed it: the status the
 * client gets is the compiler's again, a crash a signal (as compiler_process.ts compilerStatus).
 */
static int compiler_status(int wstatus) {
  int code = (wstatus >> 8) & 0xff;
  return (wstatus & 0x7f) == 0 && code > 128 && code <= 128 + 64 ? code - 128 : wstatus;
}

/*
 * Sends the protocol-1 answer for `wstatus` (serve.c's order: DONE STAT SERR SOUT DOTO; DOTO is
 * empty unless the compile succeeded). Returns 0 (declined, nothing sent), 1 (all sent), 2 (part
 * sent, the rest in *rest) or -errno.
 */
static int send_answer(const struct answer_plan *plan, int wstatus, char **rest, size_t *rest_length) {
  char *err = NULL, *out = NULL, *obj = NULL;
  size_t err_len = 0, out_len = 0, obj_len = 0;
  int result = 0;
  struct stat sock;
  if (fstat(plan->socket, &sock) != 0 || sock.st_dev != plan->socket_dev || sock.st_ino != plan->socket_ino) return 0;
  if (plan->sandboxed) wstatus = compiler_status(wstatus);
  if (slurp(plan->stderr_fd, ANSWER_MAX_CAPTURE, &err, &err_len) != 0 || slurp(plan->stdout_fd, ANSWER_MAX_CAPTURE, &out, &out_len) != 0) goto done;
  if (wstatus == 0) {
    int fd = open(plan->object, O_RDONLY | O_CLOEXEC);
    if (fd < 0) goto done; /* the caller reports why */
    int r = slurp(fd, ANSWER_MAX_OBJECT, &obj, &obj_len);
    close(fd);
    if (r != 0) goto done;
  }
  /* Each header is a token and 8 lowercase hex digits, as dcc_x_token_int writes it. */
  char heads[5][13];
  snprintf(heads[0], sizeof heads[0], "DONE%08x", (unsigned)plan->version);
  snprintf(heads[1], sizeof heads[1], "STAT%08x", (unsigned)wstatus);
  snprintf(heads[2], sizeof heads[2], "SERR%08x", (unsigned)err_len);
  snprintf(heads[3], sizeof heads[3], "SOUT%08x", (unsigned)out_len);
  snprintf(heads[4], sizeof heads[4], "DOTO%08x", (unsigned)obj_len);
  struct iovec iov[8] = {
    {heads[0], 12}, {heads[1], 12}, {heads[2], 12}, {err, err_len}, {heads[3], 12}, {out, out_len}, {heads[4], 12}, {obj, obj_len},
  };
  struct iovec *v = iov;
  int count = 8;
  for (;;) {
    while (count > 0 && v->iov_len == 0) {
      v++;
      count--;
    }
    if (count == 0) {
      result = 1;
      break;
    }
    struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)count};
    ssize_t n = sendmsg(plan->socket, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      size_t left = 0;
      for (int i = 0; i < count; i++) left += v[i].iov_len;
      char *copy = malloc(left);
      if (copy == NULL) {
        result = -ENOMEM;
        break;
      }
      size_t at = 0;
      for (int i = 0; i < count; i++) {
        memcpy(copy + at, v[i].iov_base, v[i].iov_len);
        at += v[i].iov_len;
      }
      *rest = copy;
      *rest_length = left;
      result = 2;
      break;
    }
    if (n < 0) {
      /* The descriptor was checked to be this socket just above: EPIPE, ECONNRESET and such. */
      result = -errno;
      break;
    }
    size_t k = (size_t)n;
    while (count > 0 && k >= v->iov_len) {
      k -= v->iov_len;
      v++;
      count--;
    }
    if (count > 0) {
      v->iov_base = (char *)v->iov_base + k;
      v->iov_len -= k;
    }
  }
done:
  free(err);
  free(out);
  free(obj);
  return result;
}

/* Calls the JS callback with `args` the way Node calls its own (microtasks run after it). */
static void deliver(struct exit_watch *w, size_t argc, napi_value *args) {
  napi_env env = w->env;
  napi_value callback, recv, ignored;
  if (napi_get_reference_value(env, w->callback, &callback) == napi_ok && napi_get_global(env, &recv) == napi_ok) {
    if (napi_make_callback(env, w->context, recv, callback, argc, args, &ignored) == napi_pending_exception) {
      /* Thrown by the callback: hand it to 'uncaughtException' as Node does for its own callbacks. */
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    }
  }
}

static void exited(uv_poll_t *poll, int status, int events) {
  (void)events;
  struct exit_watch *w = poll->data;
  napi_env env = w->env;
  int wstatus = 0;
  pid_t got = 0;
  int err = status < 0 ? EIO : 0;
  if (err == 0 && w->status_pipe) {
    int32_t word;
    ssize_t n;
    do {
      n = read(w->pidfd, &word, sizeof word);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return; /* spurious wake-up */
    if (n == (ssize_t)sizeof word) wstatus = word;
    else err = n < 0 ? errno : EPIPE; /* closed without a status: killed, or the host is gone */
  } else if (err == 0) {
    got = wait_nohang(w->pid, &wstatus);
    if (got == 0) return; /* not yet (spurious wake-up): keep watching */
    if (got < 0) err = errno;
  }
  uv_poll_stop(poll);
  int sent = 0;
  char *rest = NULL;
  size_t rest_length = 0;
  if (err == 0 && w->plan != NULL) sent = send_answer(w->plan, wstatus, &rest, &rest_length);
  drop_plan(w);
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    napi_value args[3];
    size_t argc = 1;
    napi_value *arg = &args[0];
    if (err == 0) {
      napi_create_int32(env, wstatus, arg);
      napi_create_int32(env, sent, &args[1]);
      argc = 2;
      if (sent == 2) {
        void *ignored;
        if (napi_create_buffer_copy(env, rest_length, rest, &ignored, &args[2]) == napi_ok) argc = 3;
        else napi_create_int32(env, -ENOMEM, &args[1]); /* no Buffer for the rest: count it as lost */
      }
    } else {
      char text[96];
      if (w->status_pipe) snprintf(text, sizeof text, "sandbox job status: %s", err == EPIPE ? "ended without one" : strerror(err));
      else snprintf(text, sizeof text, "waitpid %d: %s", (int)w->pid, strerror(err));
      napi_value message, number;
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
      napi_create_error(env, NULL, message, arg);
      napi_create_int32(env, err, &number);
      napi_set_named_property(env, *arg, "errno", number);
    }
    deliver(w, argc, args);
    napi_close_handle_scope(env, scope);
  }
  free(rest);
  napi_async_destroy(env, w->context);
  napi_delete_reference(env, w->callback);
  uv_close((uv_handle_t *)poll, watch_closed);
}

/* watch's third argument as a plan; NULL with a pending exception if it is malformed. */
static struct answer_plan *plan_arg(napi_env env, napi_value value) {
  static const char usage[] = "answer must be [socketFd, version 0 or 1, stdoutFd, stderrFd, objectPath[, sandboxed 0 or 1]]";
  bool is_array = false;
  uint32_t count = 0;
  napi_value item[6];
  struct answer_plan *plan = calloc(1, sizeof *plan);
  if (plan == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array || napi_get_array_length(env, value, &count) != napi_ok || count < 5 || count > 6) goto bad;
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, value, i, &item[i]) != napi_ok) goto bad;
  }
  if (!int_arg(env, item[0], &plan->socket) || !int_arg(env, item[1], &plan->version) || !int_arg(env, item[2], &plan->stdout_fd) ||
      !int_arg(env, item[3], &plan->stderr_fd) || plan->socket < 0 || plan->version < 0 || plan->version > 1 || plan->stdout_fd < 0 || plan->stderr_fd < 0) {
    goto bad;
  }
  if (count == 6 && (!int_arg(env, item[5], &plan->sandboxed) || plan->sandboxed < 0 || plan->sandboxed > 1)) goto bad;
  if ((plan->object = string_arg(env, item[4], "objectPath")) == NULL) {
    free(plan);
    return NULL;
  }
  return plan;
bad:
  free(plan);
  napi_throw_type_error(env, NULL, usage);
  return NULL;
}

/* watch(pid, callback[, answer]), and watchStatus(statusFd, callback[, answer]) when status_pipe. */
static napi_value watch_either(napi_env env, napi_callback_info info, int status_pipe) {
  size_t argc = 3;
  napi_value args[3];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  int32_t pid;
  napi_valuetype type = napi_undefined, answer_type = napi_undefined;
  if (argc < 2 || argc > 3 || !int_arg(env, args[0], &pid) || pid <= 0 || napi_typeof(env, args[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, status_pipe ? "watchStatus(fd, callback[, answer]) needs a descriptor and a function" : "watch(pid, callback[, answer]) needs a positive pid and a function");
    return NULL;
  }
  if (argc == 3) CHECK(napi_typeof(env, args[2], &answer_type));
  struct answer_plan *plan = NULL;
  if (answer_type != napi_undefined && (plan = plan_arg(env, args[2])) == NULL) return NULL;
  struct stat sock;
  if (plan != NULL && (fstat(plan->socket, &sock) != 0 || !S_ISSOCK(sock.st_mode))) {
    /* A pipe (ssh, inetd's pipe mode) or a closed descriptor: the caller answers. */
    free_plan(plan);
    plan = NULL;
  } else if (plan != NULL) {
    plan->socket_dev = sock.st_dev;
    plan->socket_ino = sock.st_ino;
  }
  napi_value result;
  int pidfd = status_pipe ? pid : pidfd_open(pid, 0);
  if (pidfd < 0) {
    int saved = errno;
    free_plan(plan);
    errno = saved;
  }
  if (pidfd < 0) {
    if (errno == ENOSYS) {
      CHECK(napi_get_boolean(env, false, &result));
      return result;
    }
    char subject[32];
    snprintf(subject, sizeof subject, "%d", pid);
    return throw_errno(env, errno, "pidfd_open", subject);
  }
  uv_loop_t *loop;
  struct exit_watch *w = calloc(1, sizeof *w);
  napi_value name;
  if (w == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &w->poll, pidfd) != 0) {
    free(w);
    close(pidfd);
    free_plan(plan);
    napi_throw_error(env, NULL, "cannot watch the child's pidfd");
    return NULL;
  }
  w->poll.data = w;
  w->env = env;
  w->pid = pid;
  w->pidfd = pidfd;
  w->status_pipe = status_pipe;
  if (plan != NULL) {
    w->plan = plan;
    w->next = planned;
    planned = w;
  }
  if (napi_create_reference(env, args[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "distkit-exit", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->context) != napi_ok ||
      uv_poll_start(&w->poll, UV_READABLE, exited) != 0) {
    if (w->callback != NULL) napi_delete_reference(env, w->callback);
    uv_close((uv_handle_t *)&w->poll, watch_closed);
    napi_throw_error(env, NULL, "cannot watch the child's pidfd");
    return NULL;
  }
  CHECK(napi_get_boolean(env, true, &result));
  return result;
}

static napi_value Watch(napi_env env, napi_callback_info info) {
  return watch_either(env, info, 0);
}

/* The status pipe is the watch's to close once it has been read (or failed). */
static napi_value WatchStatus(napi_env env, napi_callback_info info) {
  return watch_either(env, info, 1);
}

/* forgo(pid), and forgoStatus(statusFd) when status_pipe. */
static napi_value forgo_either(napi_env env, napi_callback_info info, int status_pipe) {
  int32_t pid;
  if (!pid_only_arg(env, info, status_pipe ? "forgoStatus(fd) needs a descriptor" : "forgo(pid) needs a positive pid", &pid)) return NULL;
  bool found = false;
  for (struct exit_watch *w = planned; w != NULL; w = w->next) {
    if (w->pid == pid && w->status_pipe == status_pipe) {
      drop_plan(w);
      found = true;
      break;
    }
  }
  napi_value result;
  CHECK(napi_get_boolean(env, found, &result));
  return result;
}

static napi_value Forgo(napi_env env, napi_callback_info info) {
  return forgo_either(env, info, 0);
}

static napi_value ForgoStatus(napi_env env, napi_callback_info info) {
  return forgo_either(env, info, 1);
}

static napi_value DeferAccept(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int32_t fd, seconds;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, args[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, args[1], &seconds) != napi_ok || seconds < 0) {
    napi_throw_type_error(env, NULL, "deferAccept(fd, seconds) needs a descriptor and seconds >= 0");
    return NULL;
  }
  if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) == -1) return throw_errno(env, errno, "setsockopt", "TCP_DEFER_ACCEPT");
  napi_value result;
  CHECK(napi_get_undefined(env, &result));
  return result;
}

static const char *family_name(int family) {
  switch (family) {
    case AF_UNIX: return "unix";
    case AF_INET: return "inet";
    case AF_INET6: return "inet6";
    default: return "other";
  }
}

static const char *type_name(int type) {
  switch (type) {
    case SOCK_STREAM: return "stream";
    case SOCK_DGRAM: return "dgram";
    case SOCK_SEQPACKET: return "seqpacket";
    default: return "other";
  }
}

static napi_value InspectSocket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, args[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "inspectSocket(fd) needs a descriptor");
    return NULL;
  }
  int family, type, listening;
  socklen_t length = sizeof family;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &length) == -1) return throw_errno(env, errno, "getsockopt", "SO_DOMAIN");
  length = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == -1) return throw_errno(env, errno, "getsockopt", "SO_TYPE");
  length = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == -1) return throw_errno(env, errno, "getsockopt", "SO_ACCEPTCONN");
  napi_value result, value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_string_utf8(env, family_name(family), NAPI_AUTO_LENGTH, &value));
  CHECK(napi_set_named_property(env, result, "family", value));
  CHECK(napi_create_string_utf8(env, type_name(type), NAPI_AUTO_LENGTH, &value));
  CHECK(napi_set_named_property(env, result, "type", value));
  CHECK(napi_get_boolean(env, listening != 0, &value));
  CHECK(napi_set_named_property(env, result, "listening", value));
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "spawn", fn) != napi_ok ||
      napi_create_function(env, "reap", NAPI_AUTO_LENGTH, Reap, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "reap", fn) != napi_ok ||
      napi_create_function(env, "watch", NAPI_AUTO_LENGTH, Watch, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "watch", fn) != napi_ok ||
      napi_create_function(env, "forgo", NAPI_AUTO_LENGTH, Forgo, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "forgo", fn) != napi_ok ||
      napi_create_function(env, "watchStatus", NAPI_AUTO_LENGTH, WatchStatus, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "watchStatus", fn) != napi_ok ||
      napi_create_function(env, "forgoStatus", NAPI_AUTO_LENGTH, ForgoStatus, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "forgoStatus", fn) != napi_ok ||
      napi_create_function(env, "deferAccept", NAPI_AUTO_LENGTH, DeferAccept, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "deferAccept", fn) != napi_ok ||
      napi_create_function(env, "inspectSocket", NAPI_AUTO_LENGTH, InspectSocket, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "inspectSocket", fn) != napi_ok ||
      register_socket_pump(env, exports) != 0 || register_sandbox_channel(env, exports) != 0 || register_probe_check(env, exports) != 0) {
    return NULL;
  }
  return exports;
}
