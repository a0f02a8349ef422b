// The fuzz targets `npm run fuzz -- --target NAME` knows. Add a distcc target here.

import type { FuzzTarget } from './fuzz_target';
import { cacheWireTarget } from './cache_wire_fuzz';
import { cacheClientTarget, cacheLiveTarget, cacheProxyTarget, cacheServerTarget } from './cache_live_targets';

export const FUZZ_TARGETS: readonly FuzzTarget[] = [cacheWireTarget, cacheLiveTarget, cacheServerTarget, cacheProxyTarget, cacheClientTarget];
