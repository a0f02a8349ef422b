/* The sandbox host program's parts (sandbox_host.c describes the program and its protocol). */
#ifndef DISTKIT_SANDBOX_HOST_H
#define DISTKIT_SANDBOX_HOST_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONTROL 3
#define MAX_MESSAGE (1 << 20)
/* Where each job's new root is built (bwrap --dir made it in the host's root). */
#define NEWROOT "/newroot"

extern char **environ;

/* Where the sources of binds are seen: "" in a host under bwrap (its root is bwrap's),
   "/oldroot" outside bwrap (a one-shot job, or a host started ahead with --own-namespaces: the
   caller's root, moved aside). */
extern const char *source_root;
/* clone(2) of a job's pid 1 with `flags` (its pidfd in *pidfd with CLONE_PIDFD), as fork returns. */
long clone_job(unsigned long flags, int *pidfd);
/* Set in a job's pid 1: a failed step is then answered as exit status 1 on the status pipe. */
extern int reports_status;
/* Whether chroot(2) is ours to use (tried once at start). */
extern int chroot_allowed;
/* Set once leave_caller_root has made every mount of this namespace private: a job's pid 1 in it
   (or in a copy of it, which keeps them private) need not walk the mount table again. */
extern int root_private;

/* Says "bwrap: WHAT: strerror(errno)" on stderr (as bwrap words its own), reports exit status 1
   on fd 3 in a job's pid 1, and exits 1. */
void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *format, ...);

/* sandbox_job_root.c: the job's root under NEWROOT. */
char *rooted(const char *path);
void make_dirs(char *path);
void make_parents(char *path);
void remount(const char *dest, unsigned long add);
void bind_path(const char *src, const char *to, int readonly, int devices);
void mount_proc(const char *to);

/* sandbox_job.c: a host's template, and a job's pid 1, from its message. */
extern int has_template;
void build_template(const char *options, size_t length);
void __attribute__((noreturn)) run_job(const char *message, size_t length);

/* sandbox_one_shot.c: the namespaces a host or job outside bwrap makes itself; `--job NET OPTIONS... -- ARGV...`. */
void own_namespaces(const char *net);
void leave_caller_root(void);
void leave_caller_root_once(void);
int one_shot(int argc, char **argv);

#endif
