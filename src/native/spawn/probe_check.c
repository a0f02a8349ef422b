/*
 * The sandbox's remembered start-up check (probe_cache.ts), looked up in C: in --inetd mode every
 * connection is a fresh process, and building the check's key in JavaScript (ten /proc files, the
 * mount table and status lines filtered, bwrap's stat) and reading the stored check through
 * Node's fs and JSON cost it ~1.2 ms of CPU, measured, most of it the first use of the regexp,
 * split and fs machinery in a new isolate: code that runs once a process never gets warm.
 *
 *   checkKey(bwrap, facts) -> the key (latin1): bwrap's identity (stat, times to the nanosecond),
 *     the boot (its boot_id, or uname's release and version where that cannot be read), the
 *     user-namespace sysctls, the pid and cgroup namespaces by identity, the uid and gid maps,
 *     setgroups, the mount table without what differs between alike namespaces (each line's
 *     mount point, options, type, source and super options: no ids, device numbers, roots or peer
 *     groups), the credential, capability and seccomp lines of /proc/self/status, then `facts`
 *     (the caller's: the user, the sandbox's arguments), each part ended by a NUL.
 *     Throws (ENOENT...) when bwrap cannot be looked at.
 *   recallCheck(file, key) -> the stored check's flags (bit 0: own /proc, 1: own network, 2: the
 *     host program's one-shot mode), or -1: no file, one that is a link, not a regular file, owned
 *     by another user than this one or root, writable by others, or stored under another key.
 *     The file is "distkit-sandbox-check 1 FLAGS\n" then the key's bytes.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "socket_pump.h"

/** The most a key may be: the mount table of a busy container fits. */
#define KEY_MAX (512 * 1024)
#define FACT_MAX (256 * 1024)

typedef struct {
  char *at;
  size_t size;
  bool full;
} Text;

static void put(Text *t, const char *s, size_t n) {
  if (t->full || t->size + n + 1 > KEY_MAX) {
    t->full = true;
    return;
  }
  memcpy(t->at + t->size, s, n);
  t->size += n;
}

static void put_part(Text *t, const char *s, size_t n) {
  put(t, s, n);
  put(t, "", 1);
}

/** Reads `fd` whole up to `room` bytes; 0 when it cannot be read. */
static size_t read_fd(int fd, char *buf, size_t room) {
  size_t size = 0;
  for (;;) {
    ssize_t n = read(fd, buf + size, room - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) size = 0;
    if (n <= 0 || (size += (size_t)n) == room) break;
  }
  return size;
}

static size_t read_file(const char *file, char *buf, size_t room) {
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
  if (fd < 0) return 0;
  size_t size = read_fd(fd, buf, room);
  close(fd);
  return size;
}

static void put_file(Text *t, const char *file, char *buf) {
  put_part(t, buf, read_file(file, buf, FACT_MAX));
}

static void put_link(Text *t, const char *link, char *buf) {
  ssize_t n = readlink(link, buf, FACT_MAX);
  put_part(t, buf, n < 0 ? 0 : (size_t)n);
}

/** Each mountinfo line as "MOUNTPOINT OPTIONS - FSTYPE SOURCE SUPEROPTIONS" (fields 5 and 6, then what follows " - "). */
static void put_mounts(Text *t, char *buf) {
  size_t size = read_file("/proc/self/mountinfo", buf, FACT_MAX);
  for (size_t at = 0; at < size;) {
    char *line = buf + at, *end = memchr(line, '\n', size - at);
    size_t length = end == NULL ? size - at : (size_t)(end - line);
    at += length + 1;
    const char *sep = memmem(line, length, " - ", 3);
    size_t left = sep == NULL ? length : (size_t)(sep - line);
    const char *field = line;
    for (int i = 0; i < 4 && field != NULL; i++) {
      const char *space = memchr(field, ' ', left - (size_t)(field - line));
      field = space == NULL ? NULL : space + 1;
    }
    if (field != NULL) {
      const char *space = memchr(field, ' ', left - (size_t)(field - line));
      const char *options_end = space == NULL ? line + left : memchr(space + 1, ' ', left - (size_t)(space + 1 - line));
      put(t, field, (size_t)((options_end == NULL ? line + left : options_end) - field));
    }
    if (sep != NULL) put(t, sep, length - left);
    put(t, "\n", 1);
  }
  put(t, "", 1);
}

/** The lines of /proc/self/status that say who this process is and what it may do. */
static void put_status(Text *t, char *buf) {
  static const char *const wanted[] = {"Uid:", "Gid:", "CapEff:", "CapBnd:", "CapPrm:", "NoNewPrivs:", "Seccomp:", "Seccomp_filters:"};
  size_t size = read_file("/proc/self/status", buf, FACT_MAX);
  for (size_t at = 0; at < size;) {
    char *line = buf + at, *end = memchr(line, '\n', size - at);
    size_t length = end == NULL ? size - at : (size_t)(end - line);
    at += length + 1;
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
      size_t n = strlen(wanted[i]);
      if (length >= n && memcmp(line, wanted[i], n) == 0) put_part(t, line, length);
    }
  }
}

/** A JavaScript string as latin1 bytes in a malloc'd buffer (NUL-terminated); NULL when it is not one. */
static char *latin1_of(napi_env env, napi_value value, size_t *length) {
  size_t n;
  if (napi_get_value_string_latin1(env, value, NULL, 0, &n) != napi_ok) return NULL;
  char *out = malloc(n + 1);
  if (out != NULL && napi_get_value_string_latin1(env, value, out, n + 1, length) != napi_ok) {
    free(out);
    return NULL;
  }
  return out;
}

/** The call's two string arguments (to be freed); false, with a TypeError thrown that says `usage`, when they are not. */
static bool two_strings(napi_env env, napi_callback_info info, char *out[2], size_t lengths[2], const char *usage) {
  size_t argc = 2;
  napi_value args[2];
  out[0] = out[1] = NULL;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) == napi_ok && argc == 2 && (out[0] = latin1_of(env, args[0], &lengths[0])) != NULL
      && (out[1] = latin1_of(env, args[1], &lengths[1])) != NULL)
    return true;
  free(out[0]);
  out[0] = NULL;
  napi_throw_type_error(env, NULL, usage);
  return false;
}

static napi_value CheckKey(napi_env env, napi_callback_info info) {
  static char buf[FACT_MAX], key[KEY_MAX];
  char *arg[2];
  size_t length[2];
  if (!two_strings(env, info, arg, length, "checkKey(bwrap, facts)")) return NULL;
  char *bwrap = arg[0], *facts = arg[1];
  size_t bwrap_length = length[0], facts_length = length[1];
  struct stat st;
  if (stat(bwrap, &st) != 0) {
    int code = errno;
    napi_value thrown = throw_errno(env, code, "stat", bwrap);
    free(bwrap);
    free(facts);
    return thrown;
  }
  Text t = {key, 0, false};
  put_part(&t, bwrap, bwrap_length);
  char id[160];
  int n = format_identity(id, sizeof id, &st);
  put_part(&t, id, (size_t)n);
  // The boot stands for the kernel: another release or build runs only after a boot (kexec included).
  size_t boot = read_file("/proc/sys/kernel/random/boot_id", buf, FACT_MAX);
  struct utsname u;
  if (boot > 0) put_part(&t, buf, boot);
  else if (uname(&u) == 0) {
    put_part(&t, u.release, strlen(u.release));
    put_part(&t, u.version, strlen(u.version));
  }
  put_file(&t, "/proc/sys/user/max_user_namespaces", buf);
  put_file(&t, "/proc/sys/kernel/unprivileged_userns_clone", buf);
  put_link(&t, "/proc/self/ns/pid", buf);
  put_link(&t, "/proc/self/ns/cgroup", buf);
  put_file(&t, "/proc/self/uid_map", buf);
  put_file(&t, "/proc/self/gid_map", buf);
  put_file(&t, "/proc/self/setgroups", buf);
  put_mounts(&t, buf);
  put_status(&t, buf);
  put(&t, facts, facts_length);
  free(bwrap);
  free(facts);
  // A key cut short would match another's: none then (an empty key matches no stored check).
  napi_value result;
  napi_create_string_latin1(env, key, t.full ? 0 : t.size, &result);
  return result;
}

#define HEADER "distkit-sandbox-check 1 "

static napi_value RecallCheck(napi_env env, napi_callback_info info) {
  static char stored[KEY_MAX + 64];
  char *arg[2];
  size_t length[2];
  if (!two_strings(env, info, arg, length, "recallCheck(file, key)")) return NULL;
  char *file = arg[0], *key = arg[1];
  size_t key_length = length[1];
  int flags = -1;
  struct stat st;
  int fd = key_length == 0 ? -1 : open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
  // Trusted as the check itself: a regular file of this user or root that no one else may write.
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_uid == geteuid() || st.st_uid == 0) && (st.st_mode & 022) == 0) {
    size_t size = read_fd(fd, stored, sizeof stored);
    size_t header = sizeof HEADER - 1;
    if (size == header + 2 + key_length && memcmp(stored, HEADER, header) == 0 && stored[header] >= '0' && stored[header] <= '7'
        && stored[header + 1] == '\n' && memcmp(stored + header + 2, key, key_length) == 0)
      flags = stored[header] - '0';
  }
  if (fd >= 0) close(fd);
  free(file);
  free(key);
  napi_value result;
  napi_create_int32(env, flags, &result);
  return result;
}

int register_probe_check(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "checkKey", NAPI_AUTO_LENGTH, CheckKey, NULL, &fn) != napi_ok || napi_set_named_property(env, exports, "checkKey", fn) != napi_ok) return -1;
  if (napi_create_function(env, "recallCheck", NAPI_AUTO_LENGTH, RecallCheck, NULL, &fn) != napi_ok || napi_set_named_property(env, exports, "recallCheck", fn) != napi_ok) return -1;
  return 0;
}
