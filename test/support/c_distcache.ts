// The original C distcache (dc_server, dc_client, dc_test) for system tests that run it against
// ours: ../shared/reference/distcache/build.sh builds it once per machine and source into
// DISTKIT_TEST_CACHE, else /var/cache/distkit-test when root, else $TMPDIR/distkit-test-cache,
// under c-distcache-<hash of the tarball and build.sh>. Test files running in parallel queue on
// a lock (flock), and a marker file says a build finished, so later runs find it ready.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { run } from './distccd_harness';
import { cacheDir } from './real_pump';

const REFERENCE = path.resolve(__dirname, '../../../../shared/reference/distcache');
const BUILD_SCRIPT = path.join(REFERENCE, 'build.sh');
const TARBALL = path.join(REFERENCE, 'distcache-1.5.1-src.tar.gz');

export interface CDistcache {
  readonly dcServer: string;
  readonly dcClient: string;
  readonly dcTest: string;
}

let building: Promise<CDistcache> | undefined;

/** Builds the C distcache unless a finished build for this source is cached, and returns its programs. */
export function cDistcache(): Promise<CDistcache> {
  building ??= (async () => {
    const hash = createHash('sha256').update(readFileSync(TARBALL)).update(readFileSync(BUILD_SCRIPT)).digest('hex').slice(0, 16);
    const prefix = path.join(cacheDir(), `c-distcache-${hash}`);
    const script = 'mkdir -p "$(dirname "$1")"; exec 9>"$1.lock"; flock 9; [ -f "$1/.complete" ] && exit 0; rm -rf "$1"; bash "$2" "$1" 9>&- && touch "$1/.complete"';
    const built = await run('bash', ['-c', script, 'build', prefix, BUILD_SCRIPT], { cwd: REFERENCE, timeoutMs: 600_000 });
    if (built.code !== 0) throw new Error(`building the C distcache failed (${built.code}):\n${built.stdout}${built.stderr}`);
    const bin = path.join(prefix, 'bin');
    return { dcServer: path.join(bin, 'dc_server'), dcClient: path.join(bin, 'dc_client'), dcTest: path.join(bin, 'dc_test') };
  })();
  return building;
}
