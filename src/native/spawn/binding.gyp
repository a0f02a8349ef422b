{
  "targets": [
    {
      "target_name": "distkit_spawn",
      "sources": ["spawn.c", "socket_pump.c", "socket_accept.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    }
  ]
}
