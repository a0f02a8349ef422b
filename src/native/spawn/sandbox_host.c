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
 *     nice ("" = unchanged), as, cpu, fsize, nproc ("" = unset), envc, env..., then bwrap options,
 *     "--", argv...
 *   with three descriptors (SCM_RIGHTS): the compiler's stdout, its stderr, the status pipe.
 *   host -> daemon: int32 0 and the job's pidfd (SIGKILL on it ends the whole job), or int32 errno
 *     (clone's, or EMSGSIZE / EBADMSG for a message too long or without its three descriptors).
 * EOF on fd 3 (the daemon is gone, done, or has retired this host) ends the host once its running
 * jobs have ended (each job's pid 1 would die with it: PDEATHSIG).
 * A step of the job's set-up that fails is written to its stderr, prefixed "bwrap: " as bwrap
 * words its own, and the job exits 1, as a bwrap that cannot build a sandbox does.
 *
 * `distkit-sandbox-host --job NET OPTIONS... -- ARGV...` runs one job without a host or bwrap
 * (one_shot, for a process that serves one connection): see there.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONTROL 3
#define MAX_MESSAGE (1 << 20)
/* Where each job's new root is built (bwrap --dir made it in the host's root). */
#define NEWROOT "/newroot"

extern char **environ;

/* Where the sources of binds are seen: "" in a host (its root is bwrap's), "/oldroot" in a
   one-shot job (see one_shot: the caller's root, moved aside). */
static const char *source_root = "";

/* Set in a job's pid 1: a failed step is then answered as exit status 1 on the status pipe. */
static int reports_status;
/* Whether chroot(2) is ours to use (tried once at start). */
static int chroot_allowed;

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *format, ...) {
  int err = errno;
  char text[8192];
  va_list ap;
  va_start(ap, format);
  int n = vsnprintf(text, sizeof text, format, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof text) n = sizeof text - 1;
  dprintf(2, "bwrap: %.*s: %s\n", n, text, strerror(err));
  if (reports_status) {
    int32_t status = 1 << 8;
    (void)!write(CONTROL, &status, sizeof status);
  }
  _exit(1);
}

/* NEWROOT followed by `path` (absolute). */
static char *rooted(const char *path) {
  static char buf[2][PATH_MAX + sizeof NEWROOT];
  static int which;
  which ^= 1;
  if (snprintf(buf[which], sizeof buf[which], "%s%s", NEWROOT, path) >= (int)sizeof buf[which]) {
    errno = ENAMETOOLONG;
    fail("path %s", path);
  }
  return buf[which];
}

/* `path` (absolute) as the job's set-up sees it: under source_root. */
static const char *source(const char *path) {
  static char buf[PATH_MAX + 16];
  if (*source_root == '\0') return path;
  if (snprintf(buf, sizeof buf, "%s%s", source_root, path) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    fail("path %s", path);
  }
  return buf;
}

/* mkdir -p of `path` (in the new root), each new level 0755. */
static void make_dirs(char *path) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST) return; /* most have their parent already */
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) fail("Can't mkdir %s", path);
    *p = saved;
    if (saved == '\0') break;
  }
}

static void make_parents(char *path) {
  char *slash = strrchr(path, '/');
  if (slash == NULL || slash == path) return;
  *slash = '\0';
  make_dirs(path);
  *slash = '/';
}

/* The flags `path`'s mount has now (a remount must repeat the locked ones). */
static unsigned long mount_flags(const char *path) {
  struct statvfs st;
  if (statvfs(path, &st) != 0) fail("Can't statvfs %s", path);
  unsigned long flags = 0;
  if (st.f_flag & ST_RDONLY) flags |= MS_RDONLY;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

static void remount(const char *dest, unsigned long add) {
  unsigned long now = mount_flags(dest);
  if ((now | add) != now && mount("none", dest, NULL, MS_SILENT | MS_BIND | MS_REMOUNT | now | add, NULL) != 0) fail("Can't remount %s", dest);
}

/* bwrap's --bind, --ro-bind, --dev-bind: the mount point made as the source's kind, then nosuid, nodev unless devices, ro if asked. */
static void bind_path(const char *src, const char *to, int readonly, int devices) {
  char *dest = rooted(to);
  const char *from = source(src);
  struct stat st;
  if (stat(from, &st) != 0) fail("Can't find source path %s", src);
  if (S_ISDIR(st.st_mode)) {
    make_dirs(dest);
  } else {
    make_parents(dest);
    int fd = open(dest, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOCTTY, 0444);
    if (fd >= 0) close(fd);
    else if (errno != EEXIST && errno != EISDIR && errno != EROFS && errno != EACCES) fail("Can't create file at %s", to);
  }
  if (mount(from, dest, NULL, MS_SILENT | MS_BIND | MS_REC, NULL) != 0) fail("Can't bind mount %s on %s", src, to);
  remount(dest, MS_NOSUID | (devices ? 0 : MS_NODEV) | (readonly ? MS_RDONLY : 0));
}

static void mount_proc(const char *to) {
  char *dest = rooted(to);
  make_dirs(dest);
  if (mount("proc", dest, "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) != 0) fail("Can't mount proc on %s", to);
  /* bwrap covers these read-only too (/proc/sysrq-trigger and such). */
  static const char *const cover[] = {"sys", "sysrq-trigger", "irq", "bus"};
  for (size_t i = 0; i < sizeof cover / sizeof cover[0]; i++) {
    char sub[PATH_MAX + sizeof NEWROOT + 32];
    snprintf(sub, sizeof sub, "%s/%s", dest, cover[i]);
    if (access(sub, W_OK) != 0) {
      if (errno == EACCES || errno == ENOENT || errno == EROFS) continue;
      fail("Can't access %s", sub);
    }
    if (mount(sub, sub, NULL, MS_SILENT | MS_BIND | MS_REC, NULL) != 0) fail("Can't bind mount %s", sub);
    remount(sub, MS_NOSUID | MS_NODEV | MS_RDONLY);
  }
}

/* The next string of the message, or NULL at its end. */
static const char *next(const char **at, const char *end) {
  if (*at >= end) return NULL;
  const char *s = *at;
  *at += strlen(s) + 1;
  return s;
}

static const char *need(const char **at, const char *end) {
  const char *s = next(at, end);
  if (s == NULL) {
    errno = EINVAL;
    fail("malformed job");
  }
  return s;
}

static void set_limit(int resource, const char *value) {
  if (*value == '\0') return;
  rlim_t n = (rlim_t)strtoull(value, NULL, 10);
  struct rlimit rl = {n, n};
  if (setrlimit(resource, &rl) != 0) fail("Can't set resource limit %d", resource);
}

/* The compiler: no capability left, no new privileges, default signals, the job's limits. */
static void __attribute__((noreturn)) exec_compiler(char **argv, char **env, const char *cwd, const char *const limits[5]) {
  reports_status = 0; /* its own failure reaches pid 1 as its exit status */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) (void)sigaction(sig, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  setsid();
  if (*limits[0] != '\0') (void)setpriority(PRIO_PROCESS, 0, atoi(limits[0]));
  set_limit(RLIMIT_AS, limits[1]);
  set_limit(RLIMIT_CPU, limits[2]);
  set_limit(RLIMIT_FSIZE, limits[3]);
  set_limit(RLIMIT_NPROC, limits[4]);
  for (int cap = 0; cap <= 63; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
    if (errno == EINVAL) break; /* past the kernel's last capability */
    fail("Can't drop capability %d", cap);
  }
  struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &head, data) != 0) fail("capset");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("prctl(PR_SET_NO_NEW_PRIVS)");
  if (cwd != NULL && chdir(cwd) != 0) fail("Can't chdir to %s", cwd);
  environ = env;
  execvp(argv[0], argv);
  fail("execvp %s", argv[0]);
}

/* A job's pid 1: builds its root, runs the compiler, reports its wait status on fd 3. */
static void __attribute__((noreturn)) run_job(const char *message, size_t length) {
  reports_status = 1;
  const char *at = message, *end = message + length;
  const char *limits[5];
  for (int i = 0; i < 5; i++) limits[i] = need(&at, end);
  int envc = atoi(need(&at, end));
  if (envc < 0 || envc > 100000) fail("malformed job");
  char **env = calloc((size_t)envc + 64, sizeof *env);
  if (env == NULL) fail("calloc");
  int n_env = 0;
  for (int i = 0; i < envc; i++) env[n_env++] = (char *)need(&at, end);
  if (mount(NULL, "/", NULL, MS_SILENT | MS_REC | MS_PRIVATE, NULL) != 0) fail("Failed to make / private");
  if (mount("tmpfs", NEWROOT, "tmpfs", MS_NODEV | MS_NOSUID, NULL) != 0) fail("Failed to mount tmpfs");
  const char *cwd = NULL, *size = NULL, *op;
  while ((op = need(&at, end)) != NULL && strcmp(op, "--") != 0) {
    if (strcmp(op, "--ro-bind") == 0 || strcmp(op, "--bind") == 0 || strcmp(op, "--dev-bind") == 0) {
      const char *src = need(&at, end), *to = need(&at, end);
      bind_path(src, to, op[2] == 'r', op[2] == 'd');
    } else if (strcmp(op, "--symlink") == 0) {
      const char *target = need(&at, end), *to = need(&at, end);
      char *dest = rooted(to);
      make_parents(dest);
      if (symlink(target, dest) != 0) fail("Can't make symlink at %s", to);
    } else if (strcmp(op, "--dir") == 0) {
      make_dirs(rooted(need(&at, end)));
    } else if (strcmp(op, "--size") == 0) {
      size = need(&at, end);
    } else if (strcmp(op, "--tmpfs") == 0) {
      const char *to = need(&at, end);
      char *dest = rooted(to);
      make_dirs(dest);
      char options[64];
      if (size != NULL) snprintf(options, sizeof options, "mode=0755,size=%s", size);
      else snprintf(options, sizeof options, "mode=0755");
      size = NULL;
      if (mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0) fail("Can't mount tmpfs on %s", to);
    } else if (strcmp(op, "--proc") == 0) {
      mount_proc(need(&at, end));
    } else if (strcmp(op, "--remount-ro") == 0) {
      remount(rooted(need(&at, end)), MS_RDONLY);
    } else if (strcmp(op, "--chdir") == 0) {
      cwd = need(&at, end);
    } else if (strcmp(op, "--setenv") == 0) {
      const char *name = need(&at, end), *value = need(&at, end);
      size_t len = strlen(name);
      char *entry = malloc(len + strlen(value) + 2);
      if (entry == NULL) fail("malloc");
      sprintf(entry, "%s=%s", name, value);
      int i = 0;
      while (i < n_env && !(strncmp(env[i], name, len) == 0 && env[i][len] == '=')) i++;
      if (i == n_env) {
        if (n_env >= envc + 63) fail("too many --setenv");
        n_env++;
      }
      env[i] = entry;
    } else {
      errno = EINVAL;
      fail("Unknown option %s", op);
    }
  }
  int argc = 0;
  char **argv = calloc((size_t)(end - at) + 1, sizeof *argv);
  if (argv == NULL) fail("calloc");
  const char *arg;
  while ((arg = next(&at, end)) != NULL) argv[argc++] = (char *)arg;
  if (argc == 0) {
    errno = EINVAL;
    fail("no command");
  }
  /* Into the new root, moved over the host's (as switch_root does) rather than pivoted to with the
     host's tree unmounted after: that unmount waits for an RCU grace period (~1 ms, measured),
     while the covered tree goes, unreachable, with the namespace when the job has answered. The
     compiler cannot uncover it: it has no capability left (and no_new_privs). Where chroot(2) is
     filtered (systemd's SystemCallFilter=~@privileged lets pivot_root alone back), bwrap's way. */
  if (chdir(NEWROOT) != 0) fail("chdir %s", NEWROOT);
  if (chroot_allowed) {
    if (mount(NEWROOT, "/", NULL, MS_MOVE, NULL) != 0) fail("move the new root");
    if (chroot(".") != 0) fail("chroot");
  } else {
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root");
    if (umount2(".", MNT_DETACH) != 0) fail("umount old root");
  }
  if (chdir("/") != 0) fail("chdir /");
  /* vfork: the compiler's set-up runs on this process's memory until its exec (it only writes
     its own stack, environ and reports_status, which pid 1 no longer reads), so no page table is
     copied for it, nor a page faulted back in after: ~0.2 ms of a job's CPU with fork, measured
     (perf: dup_mmap, copy_page_range and the faults that followed). */
  pid_t compiler = vfork();
  if (compiler < 0) fail("fork");
  if (compiler == 0) exec_compiler(argv, env, cwd, limits);
  int status = 0, got_status = 0, s;
  for (;;) {
    pid_t pid = waitpid(-1, &s, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    if (pid == compiler) {
      status = s;
      got_status = 1;
    }
    /* What the compiler left running dies with it, as it does when bwrap's pid 1 exits; again
       after each reap, for one forked while the last kill went round. */
    if (got_status) kill(-1, SIGKILL);
  }
  if (got_status) {
    int32_t out = status;
    while (write(CONTROL, &out, sizeof out) < 0 && errno == EINTR) {
    }
  }
  _exit(0);
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

/* Writes `text` to the /proc file `path` (a user namespace's maps), or fails. */
static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) fail("Can't write %s", path);
  close(fd);
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
static int one_shot(int argc, char **argv) {
  if (argc < 1) {
    errno = EINVAL;
    fail("--job NET OPTIONS... -- ARGV...");
  }
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("prctl(PR_SET_PDEATHSIG)");
  if (getppid() == 1) _exit(1); /* the parent is already gone */
  int flags = CLONE_NEWIPC | (strcmp(argv[0], "1") == 0 ? CLONE_NEWNET : 0);
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
  int pidfd = -1;
  unsigned long clone_flags = CLONE_NEWNS | CLONE_NEWPID | SIGCHLD;
#if defined(__s390__)
  long pid = syscall(SYS_clone, NULL, clone_flags, &pidfd, NULL, 0UL);
#else
  long pid = syscall(SYS_clone, clone_flags, NULL, &pidfd, NULL, 0UL);
#endif
  if (pid < 0) fail("clone");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(status_pipe[0]); /* first: it may be fd 3 itself */
    if (status_pipe[1] != CONTROL && dup2(status_pipe[1], CONTROL) < 0) fail("dup2");
    fcntl(CONTROL, F_SETFD, FD_CLOEXEC);
    if (mount(NULL, "/", NULL, MS_SILENT | MS_REC | MS_PRIVATE, NULL) != 0) fail("Failed to make / private");
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NODEV | MS_NOSUID, "mode=0755") != 0) fail("Failed to mount tmpfs on /tmp");
    if (mkdir("/tmp/oldroot", 0755) != 0 || mkdir("/tmp" NEWROOT, 0755) != 0) fail("Can't mkdir in /tmp");
    if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0) fail("pivot_root");
    if (chdir("/") != 0) fail("chdir /");
    source_root = "/oldroot";
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

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--job") == 0) return one_shot(argc - 2, argv + 2);
  /* Jobs are reaped by the kernel (their status travels on the status pipe, not through us). */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  ign.sa_flags = SA_NOCLDWAIT;
  sigaction(SIGCHLD, &ign, NULL);
  static char message[MAX_MESSAGE];
  chroot_allowed = chroot("/") == 0;
  reply(0, -1);
  for (;;) {
    union {
      struct cmsghdr head;
      char space[CMSG_SPACE(3 * sizeof(int))];
    } control;
    struct iovec iov = {message, sizeof message - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space};
    ssize_t n = recvmsg(CONTROL, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      /* The daemon is done with us (or retired us: slow to answer): the jobs running finish and
         report on their own status pipes first, as they would die with us (PDEATHSIG). With
         SA_NOCLDWAIT wait() returns only once every child is gone, then fails with ECHILD. */
      while (wait(NULL) >= 0 || errno == EINTR) {
      }
      return 0;
    }
    int fds[3] = {-1, -1, -1}, nfds = 0;
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
      continue;
    }
    message[n] = '\0';
    /* clone, not clone3: a service manager that restricts namespaces (systemd's RestrictNamespaces=)
       can only see clone's flags, and answers clone3 with ENOSYS. With no stack it forks; the
       pidfd comes back in parent_tid (flags, stack, parent_tid, then child_tid and tls, both 0,
       in either order: only s390 puts the stack first). */
    int pidfd = -1;
    unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_PIDFD | SIGCHLD;
#if defined(__s390__)
    long pid = syscall(SYS_clone, NULL, flags, &pidfd, NULL, 0UL);
#else
    long pid = syscall(SYS_clone, flags, NULL, &pidfd, NULL, 0UL);
#endif
    if (pid == 0) {
      /* Back to waiting for children ourselves; dead with the host; only the job's descriptors. */
      struct sigaction dfl;
      memset(&dfl, 0, sizeof dfl);
      dfl.sa_handler = SIG_DFL;
      sigaction(SIGCHLD, &dfl, NULL);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (dup2(fds[0], 1) < 0 || dup2(fds[1], 2) < 0 || dup2(fds[2], CONTROL) < 0) _exit(1);
      fcntl(CONTROL, F_SETFD, FD_CLOEXEC);
      close_range(4, ~0U, 0);
      run_job(message, (size_t)n);
    }
    int err = pid < 0 ? errno : 0;
    for (int i = 0; i < 3; i++) close(fds[i]);
    reply(err, pidfd);
    if (pidfd >= 0) close(pidfd);
  }
}
