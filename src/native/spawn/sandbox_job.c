/*
 * A job's pid 1 (run_job): reads the job's message (limits, environment, bwrap options, argv),
 * builds its root (sandbox_job_root.c), moves into it, vforks the compiler without capabilities
 * and reaps the whole pid namespace, then reports the compiler's raw wait status on fd 3.
 */

#include "sandbox_host.h"

#include <linux/capability.h>
#include <stdarg.h>
#include <sys/resource.h>

const char *source_root = "";
int reports_status;
int chroot_allowed;
int root_private;

void fail(const char *format, ...) {
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
  /* Read first: each drop copies the credentials, and a host has emptied its bounding set at its
     start (sandbox_host.c main), so a job's compiler finds nothing left to drop. */
  for (int cap = 0; cap <= 63; cap++) {
    int held = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (held < 0 && errno == EINVAL) break; /* past the kernel's last capability */
    if (held == 0 || prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
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

/*
 * One option that builds the root (--ro-bind, --bind, --dev-bind, --symlink, --dir, --size,
 * --tmpfs, --proc, --remount-ro), its arguments read from *at; 0 when `op` is not one of them.
 */
static int root_option(const char *op, const char **at, const char *end) {
  static const char *size;
  if (strcmp(op, "--ro-bind") == 0 || strcmp(op, "--bind") == 0 || strcmp(op, "--dev-bind") == 0) {
    const char *src = need(at, end), *to = need(at, end);
    bind_path(src, to, op[2] == 'r', op[2] == 'd');
  } else if (strcmp(op, "--symlink") == 0) {
    const char *target = need(at, end), *to = need(at, end);
    char *dest = rooted(to);
    make_parents(dest);
    if (symlink(target, dest) != 0) fail("Can't make symlink at %s", to);
  } else if (strcmp(op, "--dir") == 0) {
    make_dirs(rooted(need(at, end)));
  } else if (strcmp(op, "--size") == 0) {
    size = need(at, end);
  } else if (strcmp(op, "--tmpfs") == 0) {
    const char *to = need(at, end);
    char *dest = rooted(to);
    make_dirs(dest);
    char options[64];
    if (size != NULL) snprintf(options, sizeof options, "mode=0755,size=%s", size);
    else snprintf(options, sizeof options, "mode=0755");
    size = NULL;
    if (mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0) fail("Can't mount tmpfs on %s", to);
  } else if (strcmp(op, "--proc") == 0) {
    mount_proc(need(at, end));
  } else if (strcmp(op, "--remount-ro") == 0) {
    remount(rooted(need(at, end)), MS_RDONLY);
  } else {
    return 0;
  }
  return 1;
}

/* The root's tmpfs at NEWROOT, nodev and nosuid, as bwrap's. */
static void mount_root(void) {
  if (mount("tmpfs", NEWROOT, "tmpfs", MS_NODEV | MS_NOSUID, NULL) != 0) fail("Failed to mount tmpfs");
}

int has_template;

/*
 * In a host, once at its start: the part of every job's root that is the same for all of its
 * jobs (the compiler's directories, /dev, the links, the mount points of /proc and /tmp, all
 * read-only), built at NEWROOT from `options` (`length` bytes of NUL-ended bwrap options). Each
 * job's mount namespace is a copy of the host's, so a job sent with --on-template finds it there
 * and adds only its own mounts: ~20 mounts and mkdirs, and a tmpfs made and torn down, less a job.
 */
void build_template(const char *options, size_t length) {
  const char *at = options, *end = options + length, *op;
  mount_root();
  while ((op = next(&at, end)) != NULL) {
    if (!root_option(op, &at, end)) {
      errno = EINVAL;
      fail("Unknown template option %s", op);
    }
  }
  has_template = 1;
}

/* A job's pid 1: builds its root, runs the compiler, reports its wait status on fd 3. */
void run_job(const char *message, size_t length) {
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
  if (!root_private && mount(NULL, "/", NULL, MS_SILENT | MS_REC | MS_PRIVATE, NULL) != 0) fail("Failed to make / private");
  const char *cwd = NULL, *op = need(&at, end);
  /* On the host's template (build_template) the job adds its own mounts only; otherwise its root
     is built from nothing, on a tmpfs that covers the template where there is one. */
  if (strcmp(op, "--on-template") == 0) {
    if (!has_template) {
      errno = EINVAL;
      fail("--on-template in a host without a template");
    }
    op = need(&at, end);
  } else {
    mount_root();
  }
  for (; strcmp(op, "--") != 0; op = need(&at, end)) {
    if (root_option(op, &at, end)) continue;
    if (strcmp(op, "--chdir") == 0) {
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
