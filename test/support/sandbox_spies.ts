// The spies of the sandbox tests (issue 21): compilers that report what a job sees from inside
// (its files, the server's planted file, its namespaces, the network), the set-up that plants the
// server-only file, and the checks of what came back. Shared by the tests of the sandbox in a
// daemon's hosts (distccd_sandbox.test.ts) and in --inetd's one-shot mode.

import type { TestContext } from 'node:test';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { makeMasqueradeDir, MASQUERADE_NAMES, tempDir } from './distccd_harness';
import { encodeRequest } from './raw_distcc_client';

// Reports what the job sees: who it is, /, /tmp, the daemon's TMPDIR (JOBDIR), the planted
// file (SECRET) and its capabilities; -DHOLD keeps it running 3 s, -DHANG forever (a marked sleep). It answers no
// -print or -E probe, so the sandbox takes it for what it is, not a gcc driver.
export const SPY = `#!/bin/sh
case " $* " in *" -print"*|*" -E "*) exit 1;; esac
out=; prev=; for a; do [ "$prev" = -o ] && out=$a; prev=$a; done
case " $* " in *" -DHANG "*) exec sleep 4711.25;; esac
case " $* " in *" -DHOLD "*) sleep 3;; esac
{ echo "== id"; id -u; echo "== ls /"; ls -A /; echo "== ls /tmp"; ls -A /tmp; echo "== ls JOBDIR"; ls -A "$JOBDIR"; echo "== cat SECRET"; cat "$SECRET" 2>&1; echo "== caps"; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status; echo "== write"; if [ -r "$SECRET" ]; then echo unconfined; else for f in /filler /dev/filler; do (: > $f) 2>&1 && echo written; done; fi; echo "== end"; } >&2
: > "$out"
`;

export interface Setup {
  readonly dir: string;
  readonly tmp: string;
  readonly masq: string;
  readonly bin: string;
  readonly secret: string;
  readonly token: string;
  readonly env: NodeJS.ProcessEnv;
}

export async function setup(t: TestContext): Promise<Setup> {
  const dir = await fs.realpath(tempDir(t, 'distkit-sandbox-'));
  const tmp = path.join(dir, 'tmp');
  const bin = path.join(dir, 'bin');
  await Promise.all([fs.mkdir(tmp), fs.mkdir(bin), fs.mkdir(path.join(dir, 'server-only'))]);
  await fs.writeFile(path.join(bin, 'spy'), SPY, { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'), [...MASQUERADE_NAMES, 'spy']);
  const token = `SERVER-ONLY-${randomBytes(12).toString('hex')}`;
  const secret = path.join(dir, 'server-only', 'secret.txt');
  await fs.writeFile(secret, `${token}\n`, { mode: 0o600 });
  const env = { TMPDIR: tmp, DISTCCD_PATH: `${bin}:/usr/bin:/bin`, JOBDIR: tmp, SECRET: secret };
  return { dir, tmp, masq, bin, secret, token, env };
}

/** A source whose object embeds `file`, read by the assembler wherever the compile runs. */
export function incbin(file: string): string {
  return `__asm__(".section .rodata\\n.incbin \\"${file}\\"\\n.previous");\nint f(void) { return 1; }\n`;
}

/** Whether `token` is anywhere in what the client got: its output, its messages, the object. */
export async function leaked(token: string, said: string, object: string): Promise<boolean> {
  const bytes = await fs.readFile(object).catch(() => Buffer.alloc(0));
  return said.includes(token) || bytes.includes(token);
}

/** The spy's report: its sections by heading. */
export function report(stderr: Buffer): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of stderr.toString().split('\n')) {
    const heading = /^== (.*)$/.exec(line);
    if (heading !== null) sections.set(heading[1]!, (current = []));
    else if (line !== '') current.push(line);
  }
  return sections;
}

export function spyRequest(...defines: string[]): Buffer {
  return encodeRequest(1, ['spy', ...defines, '-c', 't.c', '-o', 't.o'], 'int x;\n');
}

// A compiler that tries the network from inside its job: a TCP connection to a listener of the
// host's on 127.0.0.1, and one to an abstract unix socket of the host's (abstract names belong
// to a network namespace, not to the file system). It answers no -print or -E probe (no driver).
export const NETSPY = `#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static void try(const char *what, int family, const struct sockaddr *to, socklen_t length) {
  int s = socket(family, SOCK_STREAM, 0);
  int r = s < 0 ? -1 : connect(s, to, length);
  fprintf(stderr, "%s %s\\n", what, r == 0 ? "connected" : strerror(errno));
}
int main(int argc, char **argv) {
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "-print", 6) == 0 || strcmp(argv[i], "-E") == 0) return 1;
    if (strcmp(argv[i - 1], "-o") == 0) out = argv[i];
  }
  struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(atoi(getenv("NETSPY_PORT")))};
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  try("tcp", AF_INET, (struct sockaddr *)&in, sizeof in);
  const char *name = getenv("NETSPY_ABSTRACT");
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  memcpy(un.sun_path + 1, name, strlen(name));
  try("abstract", AF_UNIX, (struct sockaddr *)&un, sizeof un); /* Node binds the name zero-padded to the end */
  if (out != NULL) fclose(fopen(out, "w"));
  return 0;
}
`;

export const NSSPY = `#!/bin/sh
case " $* " in *" -print"*|*" -E "*) exit 1;; esac
out=; prev=; for a; do [ "$prev" = -o ] && out=$a; prev=$a; done
for ns in mnt pid net; do echo "$ns $(readlink /proc/self/ns/$ns)" >&2; done
: > "$out"
case " $* " in *" -DSEGV "*) ulimit -c 0; kill -SEGV $$;; esac
case " $* " in *" -DHOLD "*) sleep 1;; esac
exit 0
`;

/**
 * A TCP listener of the host's on 127.0.0.1 and an abstract unix socket of its network namespace,
 * for NETSPY: the environment that tells it where they are, and what connected to them.
 */
export async function hostListeners(t: TestContext): Promise<{ accepted: string[]; env: { NETSPY_PORT: string; NETSPY_ABSTRACT: string } }> {
  const accepted: string[] = [];
  const tcp = net.createServer((c) => { accepted.push('tcp'); c.destroy(); });
  const abstractName = `distkit-netspy-${randomBytes(6).toString('hex')}`;
  const unix = net.createServer((c) => { accepted.push('abstract'); c.destroy(); });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => unix.listen(`\0${abstractName}`, resolve));
  t.after(() => { tcp.close(); unix.close(); });
  return { accepted, env: { NETSPY_PORT: String((tcp.address() as net.AddressInfo).port), NETSPY_ABSTRACT: abstractName } };
}

/** Whether a process with exactly this command line runs (the spy's marked sleep). */
async function running(cmdline: string): Promise<boolean> {
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const text = await fs.readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
    if (text === cmdline) return true;
  }
  return false;
}

export async function gone(cmdline: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (await running(cmdline)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** The command line of the spy's -DHANG sleep. */
export const HANG = 'sleep\u00004711.25\u0000';
