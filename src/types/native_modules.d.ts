// Type declarations for the three untyped npm packages the activation layer and the logger use.
// Only the calls distkit makes are declared, with the shapes verified against their sources.

declare module 'posix' {
  export interface Passwd { name: string; passwd: string; uid: number; gid: number; gecos: string; shell: string; dir: string }
  export interface Group { name: string; passwd: string; gid: number; members: string[] }
  export interface Limits { soft?: number | null; hard?: number | null }
  export function getpwnam(user: string | number): Passwd;
  export function getgrnam(group: string | number): Group;
  export function getrlimit(resource: 'nofile' | 'core' | 'nproc'): { soft: number | null; hard: number | null };
  export function setrlimit(resource: 'nofile' | 'core' | 'nproc', limits: Limits): void;
  export function initgroups(user: string, group: string | number): void;
  export function openlog(ident: string, options: { pid?: boolean; ndelay?: boolean; cons?: boolean; nowait?: boolean; odelay?: boolean }, facility: string): void;
  export function syslog(priority: string, message: string): void;
  export function closelog(): void;
}

declare module 'sd-notify' {
  export function ready(): void;
  export function stopping(pid: number): void;
  export function watchdog(): void;
  /** WATCHDOG_USEC in ms, 0 when the watchdog is off or WATCHDOG_PID is another process. */
  export function watchdogInterval(): number;
  export function sendStatus(text: string): void;
  export function sendState(state: string): void;
}

declare module 'syslog-client' {
  import { EventEmitter } from 'node:events';
  export const Transport: { readonly Tcp: number; readonly Udp: number };
  export const Facility: { readonly System: number; readonly [name: string]: number };
  export const Severity: { readonly [name: string]: number };
  export interface ClientOptions {
    port?: number;
    transport?: number;
    facility?: number;
    rfc3164?: boolean;
    syslogHostname?: string;
    appName?: string;
    tcpTimeout?: number;
  }
  export class Client extends EventEmitter {
    log(message: string, options?: { severity?: number; facility?: number }, cb?: (error?: Error) => void): this;
    close(): this;
  }
  export function createClient(target: string, options?: ClientOptions): Client;
}
