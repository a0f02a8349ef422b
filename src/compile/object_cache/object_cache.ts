// distccd's object cache (issue 16): a step of the compile job between "the request is checked"
// and "run the compiler". It computes the key (./cache_key, ./compiler_identity), asks the tiers
// in order (local disk first, so a local hit never touches the network; then the farm's Redis,
// whose hits are written back to disk), and on a miss lets the job compile, then stores what a
// successful compile answered. A hit answers exactly what that compile answered: the object, the
// .d file of a pump job as the client got it, stdout, stderr, exit 0.
//
// One compile for identical requests: while a key is being looked up or compiled, a second job
// with the same key waits for that result instead of running the compiler again (within this
// daemon; across daemons the shared tiers do the rest). A waiter whose leader did not produce an
// entry (the compile failed) compiles itself.
//
// The cache never fails a job: a key that cannot be computed or a tier that could not answer (its
// summary line says `cache:error`), an entry that does not decode (a miss) is counted and logged
// by whoever saw it, and the job compiles.

import type { Logger } from '../../log/logger';
import { BodyDigests } from './body_digests';
import { cacheKey, type KeyInput } from './cache_key';
import { CompilerIdentities } from './compiler_identity';
import { decodeEntry, encodeEntry, type CacheEntry } from './entry_codec';
import { TIER_FAILED, type ObjectTier, type ObjectTierStats } from './object_store';

/** What the summary line says of the cache for one job. */
export type CacheState = 'hit' | 'miss' | 'off' | 'error';

/** Macros whose value is the server's clock: a pump job that uses one cannot be answered from a cache. */
const CLOCK_MACROS = ['__DATE__', '__TIME__', '__TIMESTAMP__'].map((m) => Buffer.from(m));

/** Whether the content of a file names one of the server's clock macros. */
export function mentionsClock(content: Uint8Array): boolean {
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  return CLOCK_MACROS.some((m) => bytes.includes(m));
}

export interface ObjectCacheStats {
  /** Jobs answered from a tier, or from an identical job compiled at the same time. */
  readonly hits: number;
  /** Jobs looked up and compiled (a job whose lookup met a tier failure is not one: its summary says `cache:error`). */
  readonly misses: number;
  /** Entries written (to the first tier). */
  readonly stores: number;
  /** Keys that could not be computed, entries that did not decode, and the tiers' own errors. */
  readonly errors: number;
  /** Bytes held by the disk tier. */
  readonly bytes: number;
  readonly tiers: Readonly<Record<string, ObjectTierStats>>;
}

/** What a job knows of its request when it reaches the cache step. */
export interface JobKeyInput extends Omit<KeyInput, 'compiler' | 'env' | 'tmpDir'> {
  /** argv[0] as the compiler is run. */
  readonly program: string;
  /**
   * Protocol 3: the content of file `index` of `files` (its body as sent, inflated), for the check
   * that makes a job reading the server's clock uncacheable (see mentionsClock); throws when the
   * body cannot be inflated. Asked only when no entry is found: a key that has an entry was
   * stored by a job with the same tree, which did not read the clock. Undefined: the job does
   * not read it (protocols 1/2: the client expanded the macros).
   */
  readonly contentOf?: (index: number) => Uint8Array;
}

/** What the cache needs of the job around it; T is the job's outcome. */
export interface CacheJobContext<T> {
  readonly env: NodeJS.ProcessEnv;
  readonly tmpDir: string;
  /** Hears the job's cache state (once). */
  readonly onState: (state: CacheState) => void;
  /** What a successful compile answered, as an entry; undefined when it is not to be stored (only exit 0 is). */
  readonly entryOf: (outcome: T) => CacheEntry | undefined;
  /** The outcome of a hit: what the compile that made `entry` answered. */
  readonly answer: (entry: CacheEntry) => T;
  /** The outcome of a miss whose compile made `entry` (default the compile's own): its answer may
   * then send the entry's parts as a hit of it will. */
  readonly answerMiss?: (outcome: T, entry: CacheEntry) => T;
  /** Hears of the write of this job's entry (after the answer is decided, off its path). */
  readonly onStoring?: (written: Promise<void>) => void;
}

export class ObjectCache {
  readonly #tiers: readonly ObjectTier[];
  readonly #log: Logger;
  readonly #maxEntry: number;
  readonly #identities: CompilerIdentities;
  /** Digests of the pump headers every job sends again. */
  readonly #bodies = new BodyDigests();
  /** Keys being looked up or compiled now, with the entry they will give (undefined: none). */
  readonly #inFlight = new Map<string, Promise<CacheEntry | undefined>>();
  readonly #writes = new Set<Promise<void>>();
  #hits = 0;
  #misses = 0;
  #stores = 0;
  #errors = 0;

  /** `memoDir`: where compiler identities are remembered across processes (see CompilerIdentities). */
  constructor(tiers: readonly ObjectTier[], options: { readonly log: Logger; readonly maxEntryBytes: number; readonly memoDir?: string }) {
    this.#tiers = tiers;
    this.#identities = new CompilerIdentities({ memoDir: options.memoDir });
    this.#log = options.log;
    this.#maxEntry = options.maxEntryBytes;
  }

  get tiers(): readonly ObjectTier[] {
    return this.#tiers;
  }

  /** The counters, for the metrics (read at any time). */
  get stats(): ObjectCacheStats {
    const tiers: Record<string, ObjectTierStats> = {};
    let tierErrors = 0;
    for (const tier of this.#tiers) {
      tiers[tier.name] = tier.stats;
      tierErrors += tier.stats.errors;
    }
    return { hits: this.#hits, misses: this.#misses, stores: this.#stores, errors: this.#errors + tierErrors, bytes: tiers['disk']?.bytes ?? 0, tiers };
  }

  /** The key of `input` in `context`; rejects when the compiler cannot be identified. */
  async keyOf(input: JobKeyInput, context: { readonly env: NodeJS.ProcessEnv; readonly tmpDir: string }): Promise<string> {
    const compiler = await this.#identities.identify(input.program, context.env, input.protocol === 3 ? '/' : context.tmpDir);
    return cacheKey({ ...input, compiler, env: context.env, tmpDir: context.tmpDir }, this.#bodies);
  }

  /** The job's outcome: from a tier or an identical job in flight on a hit, else `compile()`'s (stored when it succeeded). */
  async produce<T>(input: JobKeyInput, compile: () => Promise<T>, context: CacheJobContext<T>): Promise<T> {
    let key: string;
    try {
      key = await this.keyOf(input, context);
    } catch (error) {
      if (this.#readsClock(input)) return this.#uncacheable(compile, context);
      this.#errors++;
      this.#log.warning('object cache key failed: compiling uncached', { reason: (error as Error).message });
      context.onState('error');
      return compile();
    }
    const leader = this.#inFlight.get(key);
    if (leader !== undefined) {
      const entry = await leader;
      if (entry !== undefined) return this.#hit(entry, context);
      // The leader did not store (its compile failed, or it was not cacheable): compile ourselves.
      if (this.#readsClock(input)) return this.#uncacheable(compile, context);
      this.#misses++;
      context.onState('miss');
      return compile();
    }
    let settle!: (entry: CacheEntry | undefined) => void;
    this.#inFlight.set(key, new Promise((resolve) => (settle = resolve)));
    let entry: CacheEntry | undefined;
    let stored: Promise<void> | undefined;
    try {
      const found = await this.#lookUp(key);
      if (found !== undefined && found !== TIER_FAILED) return this.#hit((entry = found), context);
      if (this.#readsClock(input)) return await this.#uncacheable(compile, context);
      // A tier that could not answer (counted and logged by the tier) may hold the entry: not a miss.
      if (found === TIER_FAILED) context.onState('error');
      else {
        this.#misses++;
        context.onState('miss');
      }
      const outcome = await compile();
      entry = context.entryOf(outcome);
      if (entry === undefined) return outcome;
      stored = this.#store(key, entry);
      if (stored !== undefined) context.onStoring?.(stored);
      return context.answerMiss?.(outcome, entry) ?? outcome;
    } finally {
      settle(entry);
      // Until the store is written, later identical jobs take the entry from here.
      const done = (): void => void this.#inFlight.delete(key);
      if (stored === undefined) done();
      else void stored.then(done);
    }
  }

  /**
   * Whether a file of the job's tree names a clock macro. What each file (name and bytes as sent)
   * held is remembered with its digest: the job's headers were searched when an earlier job of
   * the build missed, and only its own source is searched (some hundred KB less per miss). A tree
   * that cannot be inflated reads nothing: its compile refuses it.
   */
  #readsClock(input: JobKeyInput): boolean {
    const { files, contentOf } = input;
    if (files === undefined || contentOf === undefined) return false;
    try {
      return files.some((f, i) => f.kind === 'file' && (f.lzo === true ? this.#bodies.mentionsClock(f.name, f.body, () => mentionsClock(contentOf(i))) : mentionsClock(contentOf(i))));
    } catch {
      return false;
    }
  }

  /** A job that reads the server's clock: compiled, never stored, and the summary says `cache:off`. */
  #uncacheable<T>(compile: () => Promise<T>, context: CacheJobContext<T>): Promise<T> {
    context.onState('off');
    return compile();
  }

  #hit<T>(entry: CacheEntry, context: CacheJobContext<T>): T {
    this.#hits++;
    context.onState('hit');
    return context.answer(entry);
  }

  /**
   * The first tier that holds an intact entry; a hit from a later tier is written to the earlier
   * ones. With none: TIER_FAILED when a tier could not answer, else undefined.
   */
  async #lookUp(key: string): Promise<CacheEntry | undefined | typeof TIER_FAILED> {
    let failed = false;
    for (let i = 0; i < this.#tiers.length; i++) {
      const bytes = await this.#tiers[i]!.get(key);
      if (bytes === TIER_FAILED) failed = true;
      if (bytes === undefined || bytes === TIER_FAILED) continue;
      const entry = decodeEntry(key, bytes);
      if (entry === undefined) {
        this.#errors++;
        this.#log.warning('object cache entry corrupt: treated as a miss', { tier: this.#tiers[i]!.name, key });
        continue;
      }
      if (i > 0) this.#track(Promise.all(this.#tiers.slice(0, i).map((tier) => tier.put(key, bytes))).then(() => undefined));
      return entry;
    }
    return failed ? TIER_FAILED : undefined;
  }

  /** Writes the entry to every tier, off the job's path (the answer does not wait for the disk or the network). */
  #store(key: string, entry: CacheEntry): Promise<void> | undefined {
    const bytes = encodeEntry(key, entry);
    if (bytes.length > this.#maxEntry) {
      this.#log.debug('object cache entry over --cache-max-entry: not stored', { key, bytes: bytes.length });
      return undefined;
    }
    this.#stores++;
    return this.#track(Promise.all(this.#tiers.map((tier) => tier.put(key, bytes))).then(() => undefined));
  }

  #track(write: Promise<void>): Promise<void> {
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
    return write;
  }

  /** Waits for writes in flight, then closes the tiers. */
  async close(): Promise<void> {
    await Promise.all([...this.#writes]);
    await Promise.all(this.#tiers.map((tier) => tier.close()));
  }
}
