// The object-cache key: SHA-256 over everything that decides what the compiler answers, so that
// two requests with one key get byte-identical answers. The shared (Redis) store is written by
// many servers: the hash must be collision-resistant, never a fast non-cryptographic one.
//
// In the key, each field framed (name, length, bytes) so that no two different inputs hash alike:
//   - KEY_FORMAT: bumped whenever what goes in changes; and the entry format (ENTRY_FORMAT of
//     ./entry_codec), so that entries of another format are never looked up (read, they would
//     be taken for corrupt ones: a warning each and a removal);
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
//     in the order sent, name and content (or target), each file's content as sent, LZO1X-
//     compressed, for the same reasons (a hit then decompresses nothing: a tree of system
//     headers is some hundred KB to inflate and hash, the compressed one a third of that), and
//     as its SHA-256, which ./body_digests remembers for the headers every job sends again;
//   - the variables of the compiler's environment that change its output or its diagnostics
//     (OUTPUT_ENVIRONMENT below).

import { createHash, type Hash } from 'node:crypto';
import { sha256Of, type BodyDigests } from './body_digests';
import { ENTRY_FORMAT } from './entry_codec';

/** Bumped when the key's fields change meaning (a field under a new name, as body-lzo-sha256, changes every key it is in already): old entries become unreachable. */
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
  /** Protocol 3: the tree, in the order sent; a body with `lzo` is the file as sent, LZO1X-compressed. */
  readonly files?: readonly ({ readonly kind: 'file'; readonly name: string; readonly body: Uint8Array; readonly lzo?: boolean } | { readonly kind: 'link'; readonly name: string; readonly target: string })[];
}

/** A value at least this long goes to the hash as it is; shorter fields are gathered first (see KeyHash). */
const GATHER_MAX = 1024;
/** Where KeyHash gathers short fields; cacheKey is synchronous, so one buffer serves every call. */
let scratch = Buffer.allocUnsafeSlow(4096);

/** `name \0` of each field name seen (the names are the few of cacheKey and `env NAME`), as bytes. */
const heads = new Map<string, Buffer>();
const HEADS_KEPT = 512;

function headOf(name: string): Buffer {
  let head = heads.get(name);
  if (head === undefined) {
    head = Buffer.from(`${name}\0`, 'utf8');
    if (heads.size < HEADS_KEPT) heads.set(name, head);
  }
  return head;
}

/**
 * Frames fields into one SHA-256 stream as `name \0 length(f64 BE) bytes`. A key has a dozen or
 * more short fields (argv, env): hashed one update each, they cost several times the hashing of a
 * protocol-2 source, so they are framed into one buffer and hashed together. The stream, and so
 * the key, is the same byte for byte as one update per part would give.
 */
class KeyHash {
  readonly #hash: Hash = createHash('sha256');
  #at = 0;

  field(name: string, value: string | Uint8Array): void {
    const head = headOf(name);
    if (typeof value === 'string') {
      // Written first, its length after: a UTF-8 string takes at most 3 bytes per UTF-16 unit.
      if (3 * value.length >= GATHER_MAX) return this.field(name, Buffer.from(value, 'utf8'));
      this.#room(head.length + 8 + 3 * value.length);
      scratch.set(head, this.#at);
      const lengthAt = this.#at + head.length;
      const written = scratch.write(value, lengthAt + 8, 'utf8');
      scratch.writeDoubleBE(written, lengthAt);
      this.#at = lengthAt + 8 + written;
      return;
    }
    const large = value.byteLength >= GATHER_MAX;
    this.#room(head.length + 8 + (large ? 0 : value.byteLength));
    scratch.set(head, this.#at);
    this.#at = scratch.writeDoubleBE(value.byteLength, this.#at + head.length);
    if (large) {
      this.#flush();
      this.#hash.update(value);
    } else {
      scratch.set(value, this.#at);
      this.#at += value.byteLength;
    }
  }

  /** Bytes already framed as fields (see frameFields). */
  framed(bytes: Uint8Array): void {
    if (bytes.byteLength >= GATHER_MAX) {
      this.#flush();
      this.#hash.update(bytes);
      return;
    }
    this.#room(bytes.byteLength);
    scratch.set(bytes, this.#at);
    this.#at += bytes.byteLength;
  }

  digest(): string {
    this.#flush();
    return this.#hash.digest('hex');
  }

  #room(bytes: number): void {
    if (this.#at + bytes <= scratch.length) return;
    this.#flush();
    if (bytes > scratch.length) scratch = Buffer.allocUnsafeSlow(Math.max(bytes, 2 * scratch.length));
  }

  #flush(): void {
    if (this.#at > 0) this.#hash.update(scratch.subarray(0, this.#at));
    this.#at = 0;
  }
}

/** `fields` framed as KeyHash.field frames them, in one buffer. */
export function frameFields(fields: readonly (readonly [name: string, value: string | Uint8Array])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const length = Buffer.allocUnsafe(8);
    length.writeDoubleBE(bytes.byteLength);
    parts.push(headOf(name), length, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
  return Buffer.concat(parts);
}

/**
 * The key: 64 lowercase hex digits. `digests` remembers the digests of pump bodies (see
 * BodyDigests); the key is the same with it or without.
 */
export function cacheKey(input: KeyInput, digests?: BodyDigests): string {
  const hash = new KeyHash();
  hash.field('format', KEY_FORMAT);
  hash.field('entry', String(ENTRY_FORMAT));
  hash.field('compiler', input.compiler);
  hash.field('protocol', String(input.protocol));
  hash.field('layout', input.sandboxed === true ? 'sandbox' : 'direct');
  hash.field('argc', String(input.argv.length));
  for (const arg of input.argv) hash.field('arg', arg);
  hash.field('cwd', input.cwd);
  hash.field('tmpdir', input.tmpDir);
  for (const [name, value] of variablesOf(input.env, affectsOutput)) hash.field(`env ${name}`, value);
  if (input.source !== undefined) hash.field('source', input.source);
  if (input.sourceLzo !== undefined) hash.field('source-lzo', input.sourceLzo);
  for (const entry of input.files ?? []) {
    if (entry.kind === 'file' && entry.lzo === true && digests !== undefined) {
      const { name } = entry;
      hash.framed(digests.framedOf(name, entry.body, (digest) => frameFields([['file', name], ['body-lzo-sha256', digest]])));
    } else if (entry.kind === 'file') {
      hash.field('file', entry.name);
      if (entry.lzo === true) hash.field('body-lzo-sha256', digests?.digestOf(entry.name, entry.body) ?? sha256Of(entry.body));
      else hash.field('body', entry.body);
    } else {
      hash.field('link', entry.name);
      hash.field('target', entry.target);
    }
  }
  return hash.digest();
}
