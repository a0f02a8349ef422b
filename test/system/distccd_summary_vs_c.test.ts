// The per-job summary line is what the log parsers of existing distcc farms grep. Debian's C
// distccd writes it as `distccd[PID] (dcc_job_summary) client: PEER RESULT exit:N ...` on stderr
// and in its --log-file (both through its rs_logger_file); ours must write the same, field by
// field, in both places, for the same compile by the real distcc client.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startCDistccd, startDistccd, tempDir } from '../support/distccd_harness';

/** C distccd's summary line, whole: program[pid] (function) client: host:port RESULT exit sig core ret time compiler input. */
const SUMMARY = /^(\S+)\[(\d+)\] \((\w+)\) client: (\d+\.\d+\.\d+\.\d+):(\d+) ([A-Z_]+) exit:(\d+) sig:(\d+) core:(\d+) ret:(\d+) time:(\d+)ms (\S+) (\S+)$/;
/** The fields that differ between two runs of the same compile: pid, client port, time. */
const RUN_FIELDS = new Set([2, 5, 11]);

/** The fields of a summary line that must be equal (the rest only numbers); fails on a line of another form. */
function fieldsOf(line: string, whose: string): string[] {
  const m = SUMMARY.exec(line);
  assert.ok(m, `${whose} summary line is not in C's form: ${JSON.stringify(line)}`);
  for (const i of RUN_FIELDS) assert.match(m[i]!, /^\d+$/);
  return m.slice(1).filter((_, i) => !RUN_FIELDS.has(i + 1));
}

test("distccd writes the job summary line in C distccd's form on stderr and in its log file when the real client compiles", async (t) => {
  const root = tempDir(t, 'distkit-summary-', { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(root, 'masq'));
  await fs.writeFile(path.join(root, 't.c'), 'int f(void) { return 1; }\n');
  const logFile = path.join(root, 'distccd.log');
  const c = await startCDistccd(t);
  const ours = await startDistccd(t, { compilerDir: masq, args: ['--log-file', logFile] });

  const summaries: Array<[string, string]> = [];
  for (const [whose, port, waitFor] of [['C', c.port, c.waitFor], ['our', ours.port, ours.waitFor]] as const) {
    const compiled = await run('distcc', ['gcc', '-c', 't.c', '-o', `${whose}.o`], { cwd: root, env: clientEnv(root, `127.0.0.1:${port}`) });
    assert.equal(compiled.code, 0, compiled.stderr);
    summaries.push([`${whose} stderr`, await waitFor(/client: 127\.0\.0\.1:/)]);
  }
  // The file sink writes each line before the stderr sink: the summary is in the file already.
  const fileLine = (await fs.readFile(logFile, 'utf8')).split('\n').find((l) => l.includes(' client: 127.0.0.1:'));
  summaries.push(['our log file', fileLine ?? '(none)']);

  const [cFields, ...rest] = summaries.map(([whose, line]) => fieldsOf(line, whose));
  assert.deepEqual(cFields, ['distccd', 'dcc_job_summary', '127.0.0.1', 'COMPILE_OK', '0', '0', '0', '0', 'x86_64-linux-gnu-gcc', 't.c']);
  for (const [i, fields] of rest.entries()) assert.deepEqual(fields, cFields, summaries[i + 1]![0]);
});
