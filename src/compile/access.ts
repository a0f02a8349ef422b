// The --allow access list (distcc src/access.c): which peers may hand this server a job.
// A rule is IP[/BITS] for IPv4 or IPv6, or a host name[/BITS] resolved once at start-up to ALL
// its addresses (the C server keeps only the first getaddrinfo answer). An IPv4 rule also
// matches an IPv4-mapped IPv6 peer (::ffff:a.b.c.d), which is how a dual-stack listener sees
// IPv4 clients. --allow-private adds PRIVATE_NETWORKS.
//
// Exports:
//   parseAllowSpec(spec) -> AllowRule | { host, bits }   literal addresses parse synchronously
//   buildAccessList(specs, { allowPrivate?, lookup? }) -> Promise<AccessList>   resolves names
//   AccessList.allows(address) -> boolean   address as node:net reports it (zone ids ignored)
//   PRIVATE_NETWORKS
// Bad specs throw DistkitError 'bad-allow' (the CLI exits 101, as distccd does).

import net from 'node:net';
import { DistkitError, EXIT } from '../errors';

export const PRIVATE_NETWORKS: readonly string[] = [
  '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', 'fe80::/10', 'fc00::/7', '::1/128',
];

export interface AllowRule {
  readonly family: 4 | 6;
  /** Network address, already masked. */
  readonly network: bigint;
  readonly bits: number;
  /** The spec it came from, for log lines. */
  readonly spec: string;
}

export type LookupAll = (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

const defaultLookup: LookupAll = (host) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use: inetd mode starts a process per job
  const dns = require('node:dns') as typeof import('node:dns');
  return dns.promises.lookup(host, { all: true, verbatim: true });
};

function badAllow(spec: string, why: string): DistkitError {
  return new DistkitError('bad-allow', `Bad --allow "${spec}": ${why}; use IP[/BITS] (e.g. 10.0.0.0/8, fd00::/8) or a resolvable host name`, { exitCode: EXIT.BAD_ARGUMENTS });
}

function ipv4ToBigInt(address: string): bigint {
  let value = 0n;
  for (const part of address.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

/** Expands an IPv6 literal (net.isIPv6 already true) to its 128-bit value. */
function ipv6ToBigInt(address: string): bigint {
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const dotted = text.slice(lastColon + 1);
  if (dotted.includes('.')) {
    // "::ffff:1.2.3.4" -> "::ffff:102:304": the embedded IPv4 is the last two groups
    const v4 = ipv4ToBigInt(dotted);
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const toGroups = (part: string): bigint[] => (part === '' ? [] : part.split(':').map((h) => BigInt(parseInt(h, 16))));
  const gap = text.indexOf('::');
  let groups: bigint[];
  if (gap < 0) {
    groups = toGroups(text);
  } else {
    const head = toGroups(text.slice(0, gap));
    const tail = toGroups(text.slice(gap + 2));
    groups = [...head, ...new Array<bigint>(8 - head.length - tail.length).fill(0n), ...tail];
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | g;
  return value;
}

function mask(value: bigint, bits: number, width: number): bigint {
  const hostBits = BigInt(width - bits);
  return (value >> hostBits) << hostBits;
}

function parseBits(spec: string, text: string | undefined, width: number): number {
  if (text === undefined) return width;
  if (!/^[0-9]{1,3}$/.test(text) || Number(text) > width) throw badAllow(spec, `mask "/${text}" is not a number of bits from 0 to ${width}`);
  return Number(text);
}

function ruleFor(spec: string, address: string, bitsText: string | undefined): AllowRule {
  if (net.isIPv4(address)) {
    const bits = parseBits(spec, bitsText, 32);
    return { family: 4, network: mask(ipv4ToBigInt(address), bits, 32), bits, spec };
  }
  const bits = parseBits(spec, bitsText, 128);
  return { family: 6, network: mask(ipv6ToBigInt(address), bits, 128), bits, spec };
}

/** A literal rule, or the host name (and mask text) still to resolve. */
export function parseAllowSpec(spec: string): AllowRule | { readonly host: string; readonly bits: string | undefined } {
  if (typeof spec !== 'string') throw new TypeError('an --allow spec must be a string');
  const slash = spec.indexOf('/');
  const host = slash < 0 ? spec : spec.slice(0, slash);
  const bits = slash < 0 ? undefined : spec.slice(slash + 1);
  if (host === '') throw badAllow(spec, 'no address before the mask');
  if (bits === '') throw badAllow(spec, 'empty mask after "/"');
  if (host.includes('%')) throw badAllow(spec, 'zone ids (%) are not supported in rules');
  if (net.isIP(host) !== 0) return ruleFor(spec, host, bits);
  if (/^[0-9.]+$/.test(host)) throw badAllow(spec, `"${host}" is not a dotted-quad IPv4 address`);
  if (host.includes(':')) throw badAllow(spec, `"${host}" is not an IPv6 address`);
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(host) || host.length > 253) {
    throw badAllow(spec, `"${host}" is neither an address nor a host name`);
  }
  if (bits !== undefined && !/^[0-9]{1,3}$/.test(bits)) throw badAllow(spec, `mask "/${bits}" is not a number of bits`);
  return { host, bits };
}

export class AccessList {
  readonly #v4: readonly AllowRule[];
  readonly #v6: readonly AllowRule[];

  constructor(rules: readonly AllowRule[]) {
    this.#v4 = rules.filter((r) => r.family === 4);
    this.#v6 = rules.filter((r) => r.family === 6);
  }

  get rules(): readonly AllowRule[] {
    return [...this.#v4, ...this.#v6];
  }

  /** True when a peer at this address (as node:net reports it) may connect. */
  allows(address: string): boolean {
    const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
    if (net.isIPv4(bare)) return this.#matchV4(ipv4ToBigInt(bare));
    if (!net.isIPv6(bare)) return false;
    const value = ipv6ToBigInt(bare);
    if (value >> 32n === 0xffffn && this.#matchV4(value & 0xffffffffn)) return true;
    return this.#v6.some((r) => mask(value, r.bits, 128) === r.network);
  }

  #matchV4(value: bigint): boolean {
    return this.#v4.some((r) => mask(value, r.bits, 32) === r.network);
  }
}

/** Parses every spec, resolves host names to all their addresses, adds the private ranges when asked. */
export async function buildAccessList(
  specs: readonly string[],
  options: { readonly allowPrivate?: boolean; readonly lookup?: LookupAll } = {},
): Promise<AccessList> {
  const lookup = options.lookup ?? defaultLookup;
  const all = options.allowPrivate === true ? [...specs, ...PRIVATE_NETWORKS] : [...specs];
  const rules: AllowRule[] = [];
  for (const spec of all) {
    const parsed = parseAllowSpec(spec);
    if ('network' in parsed) {
      rules.push(parsed);
      continue;
    }
    let answers: ReadonlyArray<{ address: string; family: number }>;
    try {
      answers = await lookup(parsed.host);
    } catch (err) {
      throw badAllow(spec, `cannot resolve "${parsed.host}" (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (answers.length === 0) throw badAllow(spec, `"${parsed.host}" resolves to no address`);
    for (const { address } of answers) rules.push(ruleFor(spec, address, parsed.bits));
  }
  return new AccessList(rules);
}
