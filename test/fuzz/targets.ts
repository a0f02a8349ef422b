// The fuzz targets `npm run fuzz -- --target NAME` knows. 

import type { FuzzTarget } from './fuzz_target';
import { cacheWireTarget } from './cache_wire_fuzz';
import { distccWireTarget } from './distcc_wire_fuzz';
import { distccLiveTarget } from './distcc_live_fuzz';
import { distccJobsTarget } from './distcc_jobs_run';
import { cacheClientTarget, cacheLiveTarget, cacheProxyTarget, cacheServerTarget } from './cache_live_targets';
import { storeContractTarget } from './store_contract_run';

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  cacheWireTarget,
  cacheLiveTarget,
  cacheServerTarget,
  cacheProxyTarget,
  cacheClientTarget,
  storeContractTarget,
  distccWireTarget,
  distccLiveTarget,
  distccJobsTarget,
];
