/* What spawn.c and socket_pump.c share: the module's error style (CHECK, throw_errno) and the pump's registration. */
#ifndef DISTKIT_SOCKET_PUMP_H
#define DISTKIT_SOCKET_PUMP_H

#include <node_api.h>
#include <stddef.h>
#include <sys/stat.h>

/* A failed napi call throws and returns NULL from the calling napi function. */
#define CHECK(call)                                      \
  do {                                                   \
    if ((call) != napi_ok) {                             \
      napi_throw_error(env, NULL, "napi call failed: " #call); \
      return NULL;                                       \
    }                                                    \
  } while (0)

/* Throws an Error with errno (positive) and syscall, as every call of this addon does; NULL. */
napi_value throw_errno(napi_env env, int err, const char *syscall, const char *subject);
/* A file's identity as the sandbox check and its remembered evidence compare it (dev, inode,
 * size, mtime and ctime to the nanosecond) into out; what snprintf returns (sandbox_channel.c). */
int format_identity(char *out, size_t size, const struct stat *st);
/* Adds the socket pump's calls (socket_pump.c) to the module's exports; 0, or -1 on failure. */
int register_socket_pump(napi_env env, napi_value exports);
/* Adds the sandbox host's calls (sandbox_channel.c); 0, or -1 on failure. */
int register_sandbox_channel(napi_env env, napi_value exports);
/* Adds the sandbox check's key and its lookup (probe_check.c); 0, or -1 on failure. */
int register_probe_check(napi_env env, napi_value exports);

#endif
