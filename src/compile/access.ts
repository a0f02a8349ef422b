// The --allow access list (distcc src/access.c): which peers may hand this server a job.
// A rule is IP[/BITS] for IPv4 or IPv6, or a host name[/BITS] resolved once at start-up to ALL
// its addresses (the C server keeps only the first getaddrinfo answer). An IPv4 rule also
// matches an IPv4-mapped IPv6 peer (::ffff:a.b.c.d), which is how a dual-stack listener sees
// IPv4 clients. --allow-private adds PRIVATE_NETWORKS. Matching is node's net.BlockList; this
// file only checks the spec's shape, so a bad one gets distccd's message and exit code.
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
  /** The rule's address as written or resolved; host bits below the mask may be set (ignored). */
  readonly address: string;
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

function parseBits(spec: string, text: string | undefined, width: number): number {
  if (text === undefined) return width;
  if (!/^[0-9]{1,3}$/.test(text) || Number(text) > width) throw badAllow(spec, `mask "/${text}" is not a number of bits from 0 to ${width}`);
  return Number(text);
}

function ruleFor(spec: string, address: string, bitsText: string | undefined): AllowRule {
  if (net.isIPv4(address)) return { family: 4, address, bits: parseBits(spec, bitsText, 32), spec };
  return { family: 6, address, bits: parseBits(spec, bitsText, 128), spec };
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
  readonly #rules: readonly AllowRule[];
  // Two lists because node's BlockList also matches an IPv6 rule against a plain IPv4 peer (as
  // ::ffff:a.b.c.d): a peer seen on an IPv4 listener is checked against the IPv4 rules only, as
  // distcc does; a peer seen as IPv6 against all of them (an IPv4 rule covers its mapped form).
  readonly #v4 = new net.BlockList();
  readonly #all = new net.BlockList();

  constructor(rules: readonly AllowRule[]) {
    this.#rules = [...rules.filter((r) => r.family === 4), ...rules.filter((r) => r.family === 6)];
    for (const r of this.#rules) {
      const type = r.family === 4 ? 'ipv4' : 'ipv6';
      if (r.family === 4) this.#v4.addSubnet(r.address, r.bits, type);
      this.#all.addSubnet(r.address, r.bits, type);
    }
  }

  get rules(): readonly AllowRule[] {
    return [...this.#rules];
  }

  /** True when a peer at this address (as node:net reports it) may connect. */
  allows(address: string): boolean {
    const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
    if (net.isIPv4(bare)) return this.#v4.check(bare, 'ipv4');
    return net.isIPv6(bare) && this.#all.check(bare, 'ipv6');
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
    if ('family' in parsed) {
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
