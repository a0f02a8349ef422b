// The object cache's counters (compile/object_cache's ObjectCache.stats), read only when scraped.
// distccd calls watchObjectCache when the cache is on; with --no-cache no distccd_object_cache_*
// series is shown, and the status page says so.

import type { Registry } from 'prom-client';
import type { ObjectCacheStats } from '../compile/object_cache/object_cache';
import { ReadValue } from './instruments';

/** Registers distccd_object_cache_* read from `read()`; returns the hit ratio for the status page. */
export function watchObjectCache(registry: Registry, read: () => ObjectCacheStats): () => { hits: number; misses: number; ratio: number | null } {
  const counter = (name: string, help: string, pick: (s: ObjectCacheStats) => number): void => {
    new ReadValue(registry, { name: `distccd_object_cache_${name}`, help, type: 'counter', read: () => pick(read()) });
  };
  counter('hits_total', 'Compile jobs answered from the object cache.', (s) => s.hits);
  counter('misses_total', 'Compile jobs the object cache did not have: the compiler ran.', (s) => s.misses);
  counter('stores_total', 'Objects stored in the object cache.', (s) => s.stores);
  counter('errors_total', 'Object cache reads or writes that failed (the job compiled anyway).', (s) => s.errors);
  new ReadValue(registry, { name: 'distccd_object_cache_size_bytes', help: 'Bytes the object cache holds.', type: 'gauge', read: () => read().bytes });
  return () => {
    const { hits, misses } = read();
    return { hits, misses, ratio: hits + misses === 0 ? null : hits / (hits + misses) };
  };
}
