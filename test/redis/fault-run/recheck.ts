/**
 * Checks the event files of an earlier fault run again, without running it:
 * `node --import tsx test/redis/fault-run/recheck.ts <dir> [id …]` prints the
 * summary and every violation (or, given IDs, their whole history).
 */
import { readEvents } from '../../helpers/fault-log.js';
import { readFileSync } from 'node:fs';
import { check, readDocsModel } from './check.js';

const [dir, ...ids] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: recheck.ts <dir> [id …]');
const verdict = check(readEvents(dir), readDocsModel(readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')));
console.log(verdict.summary);
for (const v of verdict.violations) {
  if (ids.length > 0 && !ids.includes(v.id)) continue;
  console.log(`- ${v.rule} ${v.id}: ${v.message}\n  faults: ${v.faults.join('; ') || 'none'}\n${v.history.map((h) => `    ${h}`).join('\n')}`);
}
