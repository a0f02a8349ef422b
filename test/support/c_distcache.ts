// The original C distcache (dc_server, dc_client, dc_test) for system tests that run it against
// ours: scripts/bench/c_distcache.sh, the cache bench's builder, builds it once per machine and
// source (it keys the prefix on the source's hash and locks against parallel test files) into
// the tests' cache dir: DISTKIT_TEST_CACHE, else /var/cache/distkit-test when root, else
// $TMPDIR/distkit-test-cache.

import path from 'node:path';
import { run } from './distccd_harness';
import { cacheDir } from './real_pump';

const BUILDER = path.resolve(__dirname, '../../../scripts/bench/c_distcache.sh');

export interface CDistcache {
  readonly dcServer: string;
  readonly dcClient: string;
  readonly dcTest: string;
}

let building: Promise<CDistcache> | undefined;

/** Builds the C distcache unless a finished build for this source is cached, and returns its programs. */
export function cDistcache(): Promise<CDistcache> {
  building ??= (async () => {
    const built = await run('bash', [BUILDER], { cwd: path.dirname(BUILDER), env: { DISTKIT_BENCH_CACHE: cacheDir() }, timeoutMs: 600_000 });
    if (built.code !== 0) throw new Error(`building the C distcache failed (${built.code}):\n${built.stdout}${built.stderr}`);
    const bin = path.join(built.stdout.trim(), 'bin');
    return { dcServer: path.join(bin, 'dc_server'), dcClient: path.join(bin, 'dc_client'), dcTest: path.join(bin, 'dc_test') };
  })();
  return building;
}
