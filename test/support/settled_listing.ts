// What is left in a directory once a job has finished with it. distccd removes a job's temp
// files after the answer is sent (as the C server does), so a client that has its answer may
// still see them for a moment: poll until the directory holds `count` entries (0: empty) or
// `timeoutMs` has passed, and return what is there then, sorted.

import fs from 'node:fs/promises';

export async function settledListing(dir: string, options: { count?: number; timeoutMs?: number } = {}): Promise<string[]> {
  const { count = 0, timeoutMs = 5000 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const names = await fs.readdir(dir);
    if (names.length === count || Date.now() >= deadline) return names.sort();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
