{
  "targets": [
    {
      "target_name": "distkit_spawn",
      "sources": ["spawn.c", "socket_pump.c", "socket_accept.c", "redis_link.c", "redis_reply.c", "sandbox_channel.c", "probe_check.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    },
    {
      "target_name": "distkit-sandbox-host",
      "type": "executable",
      "sources": ["sandbox_host.c", "sandbox_job.c", "sandbox_job_root.c", "sandbox_one_shot.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"],
      "ldflags": ["-static"],
      "defines": ["_GNU_SOURCE"]
    }
  ]
}
