// PLACEHOLDER: the Redis tier is written on branch `redis`; this file is replaced at the merge.
import type { Logger } from '../../log/logger';
import type { ObjectTier, RedisTierOptions } from './object_store';

export function createRedisTier(_options: RedisTierOptions, _log: Logger): ObjectTier {
  throw new Error('redis tier not merged');
}
