// One tier of distccd's object cache (issue 16): a place that keeps encoded compile results by
// key. The cache (./object_cache) encodes an entry (object, .d, stdout, stderr, with a checksum
// of its own) and decides which tiers to ask in which order; a tier only keeps bytes.
//
// Tiers: the local disk (./disk_store, the first tier: a local hit never touches the network) and
// a farm's Redis (./redis_tier, which adds an HMAC under the farm secret so that whoever can
// write to the Redis cannot poison objects, and answers a miss after a short timeout so that a
// slow or dead Redis never delays a job).

export interface ObjectTierStats {
  readonly hits: number;
  readonly misses: number;
  readonly stores: number;
  /** Reads or writes that failed (I/O error, timeout, bad checksum or HMAC, outage). */
  readonly errors: number;
  /** Bytes held, where the tier knows it (the disk tier); undefined otherwise. */
  readonly bytes?: number;
}

/**
 * What `get` gives when the tier could not answer (an I/O error, a timeout, Redis down): not a
 * miss, the entry may well be there. The job compiles all the same, and its summary line says
 * `cache:error` rather than `cache:miss`.
 */
export const TIER_FAILED: unique symbol = Symbol('tier failed');

export interface ObjectTier {
  /** 'disk' or 'redis', for the log and the metrics. */
  readonly name: string;
  /** The stored bytes of `key` (64 hex digits of SHA-256), undefined on a miss (a corrupt or
   * foreign entry is one), TIER_FAILED when the tier could not tell. Never rejects: a failure is
   * logged and counted by the tier. */
  get(key: string): Promise<Buffer | undefined | typeof TIER_FAILED>;
  /** Stores `value` under `key`; never rejects (a failure is logged and counted). */
  put(key: string, value: Buffer): Promise<void>;
  readonly stats: ObjectTierStats;
  close(): Promise<void>;
}

/** What `createRedisTier` (./redis_tier) takes. */
export interface RedisTierOptions {
  /** `redis://`, `rediss://` or `unix://` URLs; more than one (or a cluster node) = a Redis
   * Cluster given by its seed nodes. */
  readonly urls: readonly string[];
  /** A file holding the Redis password (never on the command line); undefined = none. */
  readonly passwordFile?: string;
  /** The farm secret the entries' HMAC is keyed with (read from --cache-secret-file). */
  readonly secret: Buffer;
  /** Entries expire after this many seconds. */
  readonly ttlSeconds: number;
  /** Values over this many bytes are not stored. */
  readonly maxValueBytes: number;
  /** A get or put not answered in this many ms counts as a miss/failure, and the job goes on. */
  readonly timeoutMs: number;
  /** Key prefix in Redis. */
  readonly prefix: string;
}
