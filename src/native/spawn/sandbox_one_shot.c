/*
 * The host program's modes for a process that serves one connection (--inetd, systemd Accept=yes),
 * outside bwrap: the namespaces it makes itself, and one_shot, a job run without a host.
 */

#include "sandbox_host.h"

/* Writes `text` to the /proc file `path` (a user namespace's maps), or fails. */
static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) fail("Can't write %s", path);
  close(fd);
}

/*
 * The namespaces bwrap would make for a job but mount and pid (made for each job's pid 1): user
 * (as bwrap's --unshare-user-try: root may go without one), ipc, and network when NET is "1"
 * ("0": the caller's, which verify accepts only when it has no interface but lo). Dies with its
 * parent (PDEATHSIG, set again once in the new user namespace); exits at once if it is gone.
 */
void own_namespaces(const char *net) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("prctl(PR_SET_PDEATHSIG)");
  if (getppid() == 1) _exit(1); /* the parent is already gone */
  int flags = CLONE_NEWIPC | (strcmp(net, "1") == 0 ? CLONE_NEWNET : 0);
  /* A user namespace as bwrap's --unshare-user-try: root may go without one. */
  if (unshare(CLONE_NEWUSER | flags) == 0) {
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    write_file("/proc/self/gid_map", map);
  } else if (uid != 0 || unshare(flags) != 0) {
    fail("Creating new namespace failed");
  }
  /* Again, in case the new credentials cleared it; and the parent may have gone meanwhile. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("prctl(PR_SET_PDEATHSIG)");
  if (getppid() == 1) _exit(1);
}

/*
 * In a new mount namespace, before run_job: the caller's root moved aside (a tmpfs on /tmp
 * pivoted into, the old root at /oldroot, as bwrap does) so binds find their sources there, and
 * NEWROOT made for the job's root, which run_job then moves over this tmpfs. Every mount is made
 * private first (root_private), so none of the job's reaches the caller's namespace.
 */
void leave_caller_root(void) {
  if (mount(NULL, "/", NULL, MS_SILENT | MS_REC | MS_PRIVATE, NULL) != 0) fail("Failed to make / private");
  root_private = 1;
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NODEV | MS_NOSUID, "mode=0755") != 0) fail("Failed to mount tmpfs on /tmp");
  if (mkdir("/tmp/oldroot", 0755) != 0 || mkdir("/tmp" NEWROOT, 0755) != 0) fail("Can't mkdir in /tmp");
  if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0) fail("pivot_root");
  if (chdir("/") != 0) fail("chdir /");
  source_root = "/oldroot";
}

/*
 * In a host started ahead of its job (--own-namespaces), once at its start: a mount namespace of
 * its own, in which the caller's root is moved aside (leave_caller_root) before the host says it
 * is ready. Each job's pid 1 gets a copy of it, every mount still private, already pivoted: what
 * its pid 1 did before it could build the job's root (~0.3 ms of a job's wall time, measured)
 * now happens while the daemon still reads the request.
 */
void leave_caller_root_once(void) {
  if (unshare(CLONE_NEWNS) != 0) fail("Creating new mount namespace failed");
  leave_caller_root();
}

/*
 * One job, without a host: `distkit-sandbox-host --job NET OPTIONS... -- ARGV...` (NET "1" for a
 * network namespace of its own, "0" for the caller's, which verify accepts only when it has no
 * interface but lo). What a process serving one connection (--inetd, systemd Accept=yes) runs
 * instead of bwrap: the same namespaces (user, ipc, network; then mount and pid for the job's pid
 * 1), the same root built from the same options by run_job, without bwrap's dynamically linked
 * start, its reading of /proc/self/mountinfo for every bind, its loopback set-up and its unmount
 * of the old root (an RCU grace period of wall time). The caller's root is moved aside first (a
 * tmpfs on /tmp pivoted into, the old root at /oldroot, as bwrap does), so binds find their
 * sources there; the job's root is then moved over that tmpfs and chrooted into, as in a host.
 * Exits as bwrap does: the compiler's exit code, or 128 + the signal that ended it; 1 when the
 * sandbox could not be built (its reason on stderr). Dies with its parent, and the job with it.
 */
int one_shot(int argc, char **argv) {
  if (argc < 1) {
    errno = EINVAL;
    fail("--job NET OPTIONS... -- ARGV...");
  }
  own_namespaces(argv[0]);
  /* The job's message as a host gets it: no nice or limits (the caller set them on this process),
     the environment, the options and argv. */
  size_t length = 0;
  int envc = 0;
  for (char **e = environ; *e != NULL; e++, envc++) length += strlen(*e) + 1;
  for (int i = 1; i < argc; i++) length += strlen(argv[i]) + 1;
  char *message = malloc(length + 64);
  if (message == NULL) fail("malloc");
  char *at = message;
  for (int i = 0; i < 5; i++) *at++ = '\0';
  at += sprintf(at, "%d", envc) + 1;
  for (char **e = environ; *e != NULL; e++) at = stpcpy(at, *e) + 1;
  for (int i = 1; i < argc; i++) at = stpcpy(at, argv[i]) + 1;
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) fail("pipe");
  long pid = clone_job(CLONE_NEWNS | CLONE_NEWPID | SIGCHLD, NULL);
  if (pid < 0) fail("clone");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(status_pipe[0]); /* first: it may be fd 3 itself */
    if (status_pipe[1] != CONTROL && dup2(status_pipe[1], CONTROL) < 0) fail("dup2");
    fcntl(CONTROL, F_SETFD, FD_CLOEXEC);
    leave_caller_root();
    chroot_allowed = chroot("/") == 0;
    run_job(message, (size_t)(at - message));
  }
  close(status_pipe[1]);
  int32_t raw = 0;
  ssize_t got;
  do {
    got = read(status_pipe[0], &raw, sizeof raw);
  } while (got < 0 && errno == EINTR);
  /* The status comes once every process of the job has been reaped; pid 1 is not waited for:
     its end takes down the job's mounts (an RCU grace period, ~1 ms of wall time), which nothing
     needs to wait for. It dies with us if it has not ended (PDEATHSIG), and init reaps it. */
  if (got != (ssize_t)sizeof raw) {
    while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return 1;
  }
  if (WIFEXITED(raw)) return WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) return 128 + WTERMSIG(raw);
  return 1;
}
