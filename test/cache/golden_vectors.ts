// Loads the bytes captured from the real C dc_server (test/fixtures/distcache-golden.json, a copy
// of shared/vectors/distcache-golden.json) for the cache tests.

import fs from 'node:fs';
import path from 'node:path';

export interface GoldenStep {
  readonly step: string;
  readonly request: Buffer;
  readonly response: Buffer;
  readonly closedByServer: boolean;
}

export interface GoldenVector {
  readonly name: string;
  readonly serverArgs: readonly string[];
  readonly steps: readonly GoldenStep[];
  readonly serverExited: boolean;
}

interface RawVector {
  name: string;
  server_args: string[];
  steps: Array<{ step: string; request_hex: string; response_hex: string | null; connection_closed_by_server: boolean }>;
  server_exited: boolean;
}

function findRepoRoot(from: string): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

export function loadGoldenVectors(): GoldenVector[] {
  const file = path.join(findRepoRoot(__dirname), 'test', 'fixtures', 'distcache-golden.json');
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as RawVector[];
  return raw.map((v) => ({
    name: v.name,
    serverArgs: v.server_args,
    serverExited: v.server_exited,
    steps: v.steps.map((s) => ({
      step: s.step,
      request: Buffer.from(s.request_hex, 'hex'),
      response: Buffer.from(s.response_hex ?? '', 'hex'),
      closedByServer: s.connection_closed_by_server,
    })),
  }));
}

/** -sessions N from a vector's server_args, or the dc_server default 512. */
export function sessionsOf(vector: GoldenVector): number {
  const i = vector.serverArgs.indexOf('-sessions');
  return i < 0 ? 512 : Number(vector.serverArgs[i + 1]);
}
