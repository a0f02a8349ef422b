// The object-cache key: SHA-256 over everything that decides what the compiler answers, so that
// two requests with one key get byte-identical answers. The shared (Redis) store is written by
// many servers: the hash must be collision-resistant, never a fast non-cryptographic one.
//
// In the key, each field framed (name, length, bytes) so that no two different inputs hash alike:
//   - KEY_FORMAT: bumped whenever what goes in, or the entry format, changes;
//   - the compiler's identity (./compiler_identity: driver, cc1/cc1plus/as, version, machine);
//   - the protocol (1/2 send preprocessed text, 3 a tree the server preprocesses);
//   - argv as the compiler runs it, with the server's temp names replaced by fixed ones;
//   - the directory the compiler runs in: protocols 1/2 the daemon's TMPDIR (gcc writes it into
//     -g objects as DW_AT_comp_dir), protocol 3 the client's CDIR, and TMPDIR too (the temp root
//     is scrubbed to as many '/' as it has bytes);
//   - the input: protocol 1 the preprocessed source; protocol 2 the same as the client sent it,
//     LZO1X-compressed (decompression is a function: the same compressed bytes are the same
//     source, so a hit need not decompress; every distcc client compresses with the same
//     minilzo, so the same source is the same bytes); protocol 3 every FILE and LINK of the tree
//     in the order sent, name and content (or target);
//   - the variables of the compiler's environment that change its output or its diagnostics
//     (OUTPUT_ENVIRONMENT below).

import { createHash, type Hash } from 'node:crypto';

/** Bumped when the key's fields or the entry format change: old entries become unreachable. */
export const KEY_FORMAT = 'distkit-objcache-2';

/**
 * Environment that changes gcc's output or diagnostics: language and encoding of messages
 * (LANG, LANGUAGE, LC_*), __DATE__/__TIME__ (SOURCE_DATE_EPOCH), GCC_* (GCC_EXEC_PREFIX,
 * GCC_COMPARE_DEBUG, GCC_COLORS, GCC_URLS...), where the driver finds its parts (COMPILER_PATH),
 * the header search of a pump job (CPATH, C_INCLUDE_PATH, CPLUS_INCLUDE_PATH, OBJC_INCLUDE_PATH),
 * dependency output it may be asked for (DEPENDENCIES_OUTPUT, SUNPRO_DEPENDENCIES), the width of
 * diagnostics (COLUMNS) and the time zone of __DATE__ (TZ).
 */
export const OUTPUT_ENVIRONMENT: readonly (string | RegExp)[] = [
  'LANG', 'LANGUAGE', /^LC_/, 'SOURCE_DATE_EPOCH', /^GCC_/, 'COMPILER_PATH', 'CPATH', 'C_INCLUDE_PATH', 'CPLUS_INCLUDE_PATH',
  'OBJC_INCLUDE_PATH', 'DEPENDENCIES_OUTPUT', 'SUNPRO_DEPENDENCIES', 'COLUMNS', 'TZ',
];

export function affectsOutput(name: string): boolean {
  return OUTPUT_ENVIRONMENT.some((p) => (typeof p === 'string' ? p === name : p.test(name)));
}

/** By frozen environment (the daemon's, the same object every job), then by filter: its variables that pass. */
const namesOf = new WeakMap<NodeJS.ProcessEnv, Map<(name: string) => boolean, readonly (readonly [string, string])[]>>();

/**
 * The variables of `env` that pass `keep`, sorted by name, with their values. Worked out once
 * per frozen environment (and `keep`); an environment that may still change is read each time.
 */
export function variablesOf(env: NodeJS.ProcessEnv, keep: (name: string) => boolean): readonly (readonly [string, string])[] {
  const known = namesOf.get(env)?.get(keep);
  if (known !== undefined) return known;
  const vars = Object.keys(env).filter(keep).sort().map((name) => [name, env[name] ?? ''] as const);
  if (Object.isFrozen(env)) {
    if (!namesOf.has(env)) namesOf.set(env, new Map());
    namesOf.get(env)!.set(keep, vars);
  }
  return vars;
}

/** What the key is made of, once the job knows it. */
export interface KeyInput {
  /** CompilerIdentities#identify of argv[0]. */
  readonly compiler: string;
  readonly protocol: 1 | 2 | 3;
  /** The compiler ran in the bubblewrap sandbox (--sandbox): a pump tree then stands at the
   * client's paths instead of under a temp root, so the objects of the two layouts may differ. */
  readonly sandboxed?: boolean;
  /** argv as run, temp names replaced by fixed ones. */
  readonly argv: readonly string[];
  /** The compiler's working directory as it reaches the object (see above). */
  readonly cwd: string;
  /** The daemon's TMPDIR. */
  readonly tmpDir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Protocols 1/2: the preprocessed source. */
  readonly source?: Uint8Array;
  /** Protocol 2, instead of `source`: the preprocessed source as sent, LZO1X-compressed. */
  readonly sourceLzo?: Uint8Array;
  /** Protocol 3: the tree, in the order sent. */
  readonly files?: readonly ({ readonly kind: 'file'; readonly name: string; readonly body: Uint8Array } | { readonly kind: 'link'; readonly name: string; readonly target: string })[];
}

function field(hash: Hash, name: string, value: string | Uint8Array): void {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const head = Buffer.alloc(8);
  head.writeDoubleBE(bytes.length);
  hash.update(name).update('\0').update(head).update(bytes);
}

/** The key: 64 lowercase hex digits. */
export function cacheKey(input: KeyInput): string {
  const hash = createHash('sha256');
  field(hash, 'format', KEY_FORMAT);
  field(hash, 'compiler', input.compiler);
  field(hash, 'protocol', String(input.protocol));
  field(hash, 'layout', input.sandboxed === true ? 'sandbox' : 'direct');
  field(hash, 'argc', String(input.argv.length));
  for (const arg of input.argv) field(hash, 'arg', arg);
  field(hash, 'cwd', input.cwd);
  field(hash, 'tmpdir', input.tmpDir);
  for (const [name, value] of variablesOf(input.env, affectsOutput)) field(hash, `env ${name}`, value);
  if (input.source !== undefined) field(hash, 'source', input.source);
  if (input.sourceLzo !== undefined) field(hash, 'source-lzo', input.sourceLzo);
  for (const entry of input.files ?? []) {
    if (entry.kind === 'file') {
      field(hash, 'file', entry.name);
      field(hash, 'body', entry.body);
    } else {
      field(hash, 'link', entry.name);
      field(hash, 'target', entry.target);
    }
  }
  return hash.digest('hex');
}
