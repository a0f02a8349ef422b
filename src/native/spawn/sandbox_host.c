/*
 * distkit-sandbox-host: one long-lived process per compiler sandbox that starts each job's
 * compiler in a namespace of its own (src/compile/sandbox/sandbox_host.ts starts and drives it).
 *
 * A bwrap per job cost ~7 ms of wall time and ~2.5 ms of CPU for a trivial compile (exec of bwrap,
 * a user, network and ipc namespace made and torn down, bwrap's monitor process), more than the
 * 5 ms a job may spend on its sandbox. The host runs once, inside bwrap (user, network, ipc and
 * pid namespaces, the compiler's directories read-only, /dev's five nodes, a /proc, the daemon's
 * TMPDIR read-write, an empty root otherwise), and keeps CAP_SYS_ADMIN, CAP_SETPCAP and CAP_SYS_CHROOT in its own
 * user namespace. Per job it clones a child into a new mount and pid namespace (the child is that
 * namespace's pid 1), which builds a new root from nothing as bwrap would (the same bwrap options,
 * interpreted here: --ro-bind, --bind, --dev-bind, --symlink, --dir, --tmpfs with --size, --proc,
 * --remount-ro, --chdir, --setenv), pivots into it and detaches the host's tree, then forks the
 * compiler with no capability, no_new_privs, its own session, the job's nice and resource limits.
 * The pid 1 reaps everything, and once the compiler has exited kills what it left behind and
 * writes the compiler's raw wait status (signal and core bit included) to the job's status pipe.
 *
 * Protocol, on the SOCK_SEQPACKET socket at fd 3 (the other end is the daemon's):
 *   host -> daemon at start: int32 0.
 *   daemon -> host, one message per job: NUL-terminated strings
 *     nice ("" = unchanged), as, cpu, fsize, nproc ("" = unset), envc, env..., then bwrap options
 *     (first --on-template for a job built on the host's template), "--", argv...
 *   with three descriptors (SCM_RIGHTS): the compiler's stdout, its stderr, the status pipe.
 *   host -> daemon: int32 0 and the job's pidfd (SIGKILL on it ends the whole job), or int32 errno
 *     (clone's, or, from a host started ahead, its job's pid 1's pidfd_open; or EMSGSIZE / EBADMSG
 *     for a message too long or without its three descriptors).
 * EOF on fd 3 (the daemon is gone, done, or has retired this host) ends the host once its running
 * jobs have ended (each job's pid 1 would die with it: PDEATHSIG).
 * A step of the job's set-up that fails is written to its stderr, prefixed "bwrap: " as bwrap
 * words its own, and the job exits 1, as a bwrap that cannot build a sandbox does.
 *
 * With DISTKIT_SANDBOX_TEMPLATE in its environment (bwrap options, each NUL-ended, in hex), a host
 * builds at its start the part of its jobs' roots they all share (build_template), and a job sent
 * with --on-template adds only its own mounts to it.
 *
 * `distkit-sandbox-host --job NET OPTIONS... -- ARGV...` runs one job without a host or bwrap
 * (one_shot, for a process that serves one connection): see there.
 *
 * `distkit-sandbox-host --own-namespaces NET` is a host without bwrap, for a process that serves
 * one connection (--inetd) and starts it before the job is known, while the request is still
 * being read: it makes the namespaces a one-shot job makes (own_namespaces) and a mount namespace
 * in which it moves the caller's root aside as a one-shot job's pid 1 does (leave_caller_root_once),
 * clones its one job's pid 1 in a copy of that namespace, and says it is ready; that pid 1 takes
 * the job and answers it itself (one_job_ahead). The daemon sees the protocol above.
 */

#include "sandbox_host.h"

/* The template's options from DISTKIT_SANDBOX_TEMPLATE (hex), built at NEWROOT; none when unset. */
static void template_from_env(void) {
  const char *hex = getenv("DISTKIT_SANDBOX_TEMPLATE");
  if (hex == NULL) return;
  size_t length = strlen(hex) / 2;
  char *options = malloc(length + 1);
  if (options == NULL) fail("malloc");
  for (size_t i = 0; i < length; i++) {
    unsigned byte;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
      errno = EINVAL;
      fail("DISTKIT_SANDBOX_TEMPLATE");
    }
    options[i] = (char)byte;
  }
  options[length] = '\0';
  build_template(options, length);
  free(options);
  unsetenv("DISTKIT_SANDBOX_TEMPLATE");
}

static void reply(int err, int pidfd) {
  int32_t word = err;
  struct iovec iov = {&word, sizeof word};
  union {
    struct cmsghdr head;
    char space[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (pidfd >= 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pidfd, sizeof pidfd);
  }
  while (sendmsg(CONTROL, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) _exit(0); /* the daemon is gone */
  }
}

/* The job's message (NUL-terminated) and its three descriptors. */
static char message[MAX_MESSAGE];

/*
 * Receives one job into `message` and `fds`: its length, 0 when the daemon is done (EOF), or -1
 * when the message was refused (answered EMSGSIZE or EBADMSG, its descriptors closed).
 */
static ssize_t receive_job(int fds[3]) {
  union {
    struct cmsghdr head;
    char space[CMSG_SPACE(3 * sizeof(int))];
  } control;
  struct iovec iov = {message, sizeof message - 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space};
  ssize_t n;
  while ((n = recvmsg(CONTROL, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return 0;
  int nfds = 0;
  fds[0] = fds[1] = fds[2] = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (nfds < 3) fds[nfds++] = fd;
      else close(fd);
    }
  }
  if (nfds != 3 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    /* Errnos clone never gives: the daemon tells a bad message (this job) from a refused clone (every job). */
    for (int i = 0; i < nfds; i++) close(fds[i]);
    reply((msg.msg_flags & MSG_TRUNC) != 0 ? EMSGSIZE : EBADMSG, -1);
    return -1;
  }
  message[n] = '\0';
  return n;
}

/* In a job's pid 1: waits for its own children, dies with the host, keeps the job's descriptors only (at 1, 2 and 3). */
static void enter_job(const int fds[3]) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, NULL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (dup2(fds[0], 1) < 0 || dup2(fds[1], 2) < 0 || dup2(fds[2], CONTROL) < 0) _exit(1);
  fcntl(CONTROL, F_SETFD, FD_CLOEXEC);
  close_range(4, ~0U, 0);
}

/* clone, not clone3: a service manager that restricts namespaces (systemd's RestrictNamespaces=)
   can only see clone's flags, and answers clone3 with ENOSYS. With no stack it forks; the pidfd
   comes back in parent_tid (flags, stack, parent_tid, then child_tid and tls, both 0, in either
   order: only s390 puts the stack first). */
long clone_job(unsigned long flags, int *pidfd) {
#if defined(__s390__)
  return syscall(SYS_clone, NULL, flags, pidfd, NULL, 0UL);
#else
  return syscall(SYS_clone, flags, NULL, pidfd, NULL, 0UL);
#endif
}

/*
 * A host started ahead of its one job (--own-namespaces): the job's pid 1 is cloned now, before
 * the host says it is ready, and takes the job itself (its message, then the answer with a pidfd
 * of its own), so the clone and the new process's first run (~0.7 ms of a job's wall time,
 * median of 60 instrumented runs) happen while the daemon still reads the request. The host
 * then only waits for it. No job (EOF) ends both; a refused message is answered as a host would.
 */
static void __attribute__((noreturn)) one_job_ahead(void) {
  long pid = clone_job(CLONE_NEWNS | CLONE_NEWPID | SIGCHLD, NULL);
  if (pid < 0) fail("clone");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fds[3];
    ssize_t n = receive_job(fds);
    if (n <= 0) _exit(0);
    int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (self < 0) {
      reply(errno, -1);
      _exit(0);
    }
    reply(0, self);
    close(self);
    enter_job(fds);
    run_job(message, (size_t)n);
  }
  reply(0, -1);
  close(CONTROL); /* the job's pid 1 answers from now on */
  /* With SA_NOCLDWAIT, wait() returns once the job's pid 1 is gone, then fails with ECHILD. */
  while (wait(NULL) >= 0 || errno == EINTR) {
  }
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--job") == 0) return one_shot(argc - 2, argv + 2);
  int outside_bwrap = argc > 2 && strcmp(argv[1], "--own-namespaces") == 0;
  if (outside_bwrap) {
    own_namespaces(argv[2]);
    leave_caller_root_once();
  }
  /* Jobs are reaped by the kernel (their status travels on the status pipe, not through us). */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  ign.sa_flags = SA_NOCLDWAIT;
  sigaction(SIGCHLD, &ign, NULL);
  chroot_allowed = chroot("/") == 0;
  /* No job's compiler may gain a capability at its exec: the bounding set is emptied here, once,
     as it limits execs only (this process keeps what it holds). Each compiler still checks and
     drops what is left (exec_compiler), which is then nothing: ~40 copies of its credentials less. */
  for (int cap = 0; cap <= 63; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
  }
  template_from_env();
  if (outside_bwrap) one_job_ahead();
  reply(0, -1);
  for (;;) {
    int fds[3];
    ssize_t n = receive_job(fds);
    if (n < 0) continue;
    if (n == 0) {
      /* The daemon is done with us (or retired us: slow to answer): the jobs running finish and
         report on their own status pipes first, as they would die with us (PDEATHSIG). With
         SA_NOCLDWAIT wait() returns only once every child is gone, then fails with ECHILD. */
      while (wait(NULL) >= 0 || errno == EINTR) {
      }
      return 0;
    }
    int pidfd = -1;
    long pid = clone_job(CLONE_NEWNS | CLONE_NEWPID | CLONE_PIDFD | SIGCHLD, &pidfd);
    if (pid == 0) {
      enter_job(fds);
      run_job(message, (size_t)n);
    }
    int err = pid < 0 ? errno : 0;
    for (int i = 0; i < 3; i++) close(fds[i]);
    reply(err, pidfd);
    if (pidfd >= 0) close(pidfd);
  }
}
