/*
 * distkit_spawn: starts a compiler the way a small C daemon would, for distccd's hot path.
 *
 * Node's child_process forks the whole daemon (page tables of a 50 MB process, then a
 * copy-on-write fault on every page the parent touches next) and wires stdio through pipes:
 * about 1.5 ms of the event loop per compiler, more than the rest of a job together. glibc's
 * posix_spawn uses clone(CLONE_VM|CLONE_VFORK), which costs the same for any parent size, and
 * the compiler's stdout/stderr go straight to files the daemon opened (as distccd does).
 *
 *   spawn(file, argv, env, cwd, stdoutFd, stderrFd) -> pid
 *     The child gets stdin /dev/null, stdout/stderr on the given fds, no other fd (closefrom 3:
 *     no listener or client socket leaks into a compiler), its own session and process group
 *     (so a timeout kills gcc and every cc1/as it started), default signal dispositions and an
 *     empty signal mask (Node ignores SIGPIPE, which exec would otherwise pass on), and cwd.
 *     A bare file name is searched in the PATH of `env` (the compiler's, not the daemon's), like
 *     execvp. Errors throw an Error with `errno` (positive) and `syscall`.
 *   reap(pid) -> undefined while it runs, else the raw wait status (core-dump bit included).
 *   watch(pid, callback) -> true, or false where the kernel has no pidfd_open (before 5.3)
 *     Reaps `pid` when it exits and calls callback(status), or callback(error) if waitpid
 *     failed. The exit reaches the event loop as a readable pidfd, on the loop's own thread:
 *     no signal handler, no wake-up pipe, no poll of every child. The watch keeps the loop
 *     alive while the child runs.
 *
 * Reaping is the caller's: libuv's SIGCHLD handler only waits for pids it spawned itself.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#define CHECK(call)                                      \
  do {                                                   \
    if ((call) != napi_ok) {                             \
      napi_throw_error(env, NULL, "napi call failed: " #call); \
      return NULL;                                       \
    }                                                    \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *subject) {
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

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc != 6) {
    napi_throw_type_error(env, NULL, "spawn(file, argv, env, cwd, stdoutFd, stderrFd)");
    return NULL;
  }
  int32_t out_fd, err_fd;
  if (!int_arg(env, args[4], &out_fd) || !int_arg(env, args[5], &err_fd) || out_fd < 3 || err_fd < 3) {
    napi_throw_type_error(env, NULL, "stdoutFd and stderrFd must be descriptors >= 3");
    return NULL;
  }
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

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  err = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (err == 0) err = posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  if (err == 0) err = posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  if (err == 0) err = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (err == 0) err = posix_spawn_file_actions_addchdir_np(&actions, cwd);
  if (err == 0) err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &all);
  if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
  pid_t pid = -1;
  if (err == 0) err = posix_spawn(&pid, path, &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
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

static napi_value Reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  int32_t pid;
  if (argc != 1 || !int_arg(env, args[0], &pid) || pid <= 0) {
    napi_throw_type_error(env, NULL, "reap(pid) needs a positive pid");
    return NULL;
  }
  int status = 0;
  pid_t got;
  do {
    got = waitpid(pid, &status, WNOHANG);
  } while (got < 0 && errno == EINTR);
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

/* One child being watched: its pidfd under a libuv poll handle, and the JS callback. */
struct exit_watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  pid_t pid;
  int pidfd;
};

static void watch_closed(uv_handle_t *handle) {
  struct exit_watch *w = handle->data;
  close(w->pidfd);
  free(w);
}

/* Calls the JS callback with `arg` the way Node calls its own (microtasks run after it). */
static void deliver(struct exit_watch *w, napi_value arg) {
  napi_env env = w->env;
  napi_value callback, recv, ignored;
  if (napi_get_reference_value(env, w->callback, &callback) == napi_ok && napi_get_global(env, &recv) == napi_ok) {
    if (napi_make_callback(env, w->context, recv, callback, 1, &arg, &ignored) == napi_pending_exception) {
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
  if (err == 0) {
    do {
      got = waitpid(w->pid, &wstatus, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == 0) return; /* not yet (spurious wake-up): keep watching */
    if (got < 0) err = errno;
  }
  uv_poll_stop(poll);
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    napi_value arg;
    if (err == 0) {
      napi_create_int32(env, wstatus, &arg);
    } else {
      char text[96];
      snprintf(text, sizeof text, "waitpid %d: %s", (int)w->pid, strerror(err));
      napi_value message, number;
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
      napi_create_error(env, NULL, message, &arg);
      napi_create_int32(env, err, &number);
      napi_set_named_property(env, arg, "errno", number);
    }
    deliver(w, arg);
    napi_close_handle_scope(env, scope);
  }
  napi_async_destroy(env, w->context);
  napi_delete_reference(env, w->callback);
  uv_close((uv_handle_t *)poll, watch_closed);
}

static napi_value Watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  int32_t pid;
  napi_valuetype type = napi_undefined;
  if (argc != 2 || !int_arg(env, args[0], &pid) || pid <= 0 || napi_typeof(env, args[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "watch(pid, callback) needs a positive pid and a function");
    return NULL;
  }
  napi_value result;
  int pidfd = pidfd_open(pid, 0);
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
    napi_throw_error(env, NULL, "cannot watch the child's pidfd");
    return NULL;
  }
  w->poll.data = w;
  w->env = env;
  w->pid = pid;
  w->pidfd = pidfd;
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

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "spawn", fn) != napi_ok ||
      napi_create_function(env, "reap", NAPI_AUTO_LENGTH, Reap, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "reap", fn) != napi_ok ||
      napi_create_function(env, "watch", NAPI_AUTO_LENGTH, Watch, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "watch", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}
