/*
 * Building a job's root from bwrap's options (sandbox_job.c reads them): the mount points under
 * NEWROOT made as their source's kind, binds remounted nosuid (nodev unless devices, read-only if
 * asked), a /proc with bwrap's read-only covers. A failed step fails the job (fail).
 */

#include "sandbox_host.h"

#include <sys/statvfs.h>

/* NEWROOT followed by `path` (absolute). */
char *rooted(const char *path) {
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
void make_dirs(char *path) {
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

void make_parents(char *path) {
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

void remount(const char *dest, unsigned long add) {
  unsigned long now = mount_flags(dest);
  if ((now | add) != now && mount("none", dest, NULL, MS_SILENT | MS_BIND | MS_REMOUNT | now | add, NULL) != 0) fail("Can't remount %s", dest);
}

/* bwrap's --bind, --ro-bind, --dev-bind: the mount point made as the source's kind, then nosuid, nodev unless devices, ro if asked. */
void bind_path(const char *src, const char *to, int readonly, int devices) {
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

void mount_proc(const char *to) {
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
