// Types for distkit's own N-API addon (src/native/spawn, package distkit-spawn): the calls and
// their contracts are documented at the top of spawn.c.
declare module 'distkit-spawn' {
  /** watch()'s answer plan: answer the distcc client on `socket` from these captures and object. */
  export type AnswerPlan = [socket: number, version: number, stdoutFd: number, stderrFd: number, object: string, sandboxed?: number];
  /** How a watched child's end is reported: its wait status, and what the addon sent. */
  export type ExitCallback = (status: number | Error, sent?: number, rest?: Buffer) => void;
  /** Resource limits set on the child before exec (soft = hard): bytes, seconds, bytes, processes. */
  export interface Limits {
    readonly as?: number;
    readonly cpu?: number;
    readonly fsize?: number;
    readonly nproc?: number;
  }
  export function spawn(file: string, argv: readonly string[], env: readonly string[], cwd: string, stdoutFd: number, stderrFd: number, limits?: Limits, keepFd?: number): number;
  export function reap(pid: number): number | undefined;
  export function watch(pid: number, done: ExitCallback, answer?: AnswerPlan): boolean;
  export function forgo(pid: number): boolean;
  /** A sandbox host's job (sandbox_channel.c): its wait status arrives on `statusFd`, which the watch closes. */
  export function watchStatus(statusFd: number, done: ExitCallback, answer?: AnswerPlan): boolean;
  export function forgoStatus(statusFd: number): boolean;
  /** [daemon's end, host's end] of a SOCK_SEQPACKET pair. */
  export function hostChannel(): [number, number];
  /** The host's next int32 word (0: ready); throws ETIMEDOUT, or EPIPE once the host is gone. */
  export function hostReply(fd: number, timeoutMs: number): number;
  /** Sends a job with its stdout, stderr and status pipe; the job's pidfd. */
  export function hostRun(fd: number, message: Buffer, stdoutFd: number, stderrFd: number, statusFd: number, timeoutMs: number): number;
  /** [read end (non-blocking), write end], both close-on-exec. */
  export function statusPipe(): [number, number];
  export function pidfdKill(pidfd: number): void;
  /** The sandbox host's executable, beside the addon. */
  export function hostProgram(): string;
  /** Each path's identity (lstat: dev, inode, size, times to the nanosecond), 'absent' where it cannot be looked at. */
  export function identities(paths: readonly string[]): string[];
  /** The sandbox check's key (probe_check.c): bwrap's identity, the kernel's, namespaces' and credentials' facts, then `facts`; throws when bwrap cannot be looked at. */
  export function checkKey(bwrap: string, facts: string): string;
  /** The flags of the check stored in `file` under `key` (1: /proc, 2: network, 4: one-shot), -1 when none may be trusted there. */
  export function recallCheck(file: string, key: string): number;
  export function deferAccept(fd: number, seconds: number): void;
  /** What a socket says of itself (getsockopt SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN). */
  export interface SocketFacts {
    readonly family: 'unix' | 'inet' | 'inet6' | 'other';
    readonly type: 'stream' | 'dgram' | 'seqpacket' | 'other';
    readonly listening: boolean;
  }
  export function inspectSocket(fd: number): SocketFacts;
  /** The socket pump (socket_pump.c): [arena, events, out, sends]; events are [id, kind, offset,
   * length] x count; sends are [id, offset, length (-1 = end), result] entries for pumpSend. */
  export function pumpOpen(onEvents: (count: number) => void): [arena: Buffer, events: Int32Array, out: Buffer, sends: Int32Array];
  /** Sends the first `count` entries of `sends` (from `out`) in order, each result as pumpWrite's
   * (or pumpEnd's, for length -1) in the entry's fourth int. */
  export function pumpSend(count: number): void;
  export function pumpAdopt(fd: number, noDelay: boolean): number;
  /** 1 all sent, 0 queued (reading stops until a drain event), -errno the socket is closed. */
  export function pumpWrite(id: number, bytes: Buffer, length: number): number;
  /** 1 closed now, 0 closes later with a closed event. */
  export function pumpEnd(id: number): number;
  export function pumpPause(id: number, paused: boolean): void;
  export function pumpDestroy(id: number): void;
  /** Makes pumped socket `id` a Redis link (redis_link.c): its command area [cmds, bytes]; with
   * `mget` a run of lookups is one MGET. */
  export function linkStart(id: number, prefix: Buffer, mget: boolean): [cmds: Int32Array, bytes: Buffer];
  /** Sends the first `count` requests of the link's command area: 1 sent, 0 queued, -errno. */
  export function linkSend(id: number, count: number): number;
  /** The link's reply parser alone: ops are [operation, run] pairs, the bytes fed split at
   * `cuts`; [kind, a, b] per answer, [-1, offset, 0] at the end when the bytes are corrupt. */
  export function replyParse(ops: Int32Array, bytes: Buffer, cuts: Int32Array): Int32Array;
  /** A new listening socket's fd, or -errno. */
  export function pumpBindTcp(host: string, port: number, backlog: number): number;
  export function pumpBindUnix(path: string, backlog: number): number;
  /** The pump accepts from listening socket `fd` (taken over); its listener number, or -errno. */
  export function pumpListen(fd: number): number;
  export function pumpUnlisten(listener: number): void;
  /** "127.0.0.1:80", "[::1]:80", or "" (not TCP). */
  export function pumpSockName(fd: number): string;
}
