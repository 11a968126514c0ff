// Profiling entry (not part of `npm run bench`): drives one implementation
// through one scenario long enough for `node --cpu-prof` / `--trace-gc`.
//   node --expose-gc --cpu-prof --import tsx bench/profile.ts rrxc one|routing [open]
//   node --expose-gc --import tsx bench/profile.ts rrxc replies [open]
//   node --expose-gc --import tsx bench/profile.ts rrxc alloc [open]
// `replies` profiles only what routing times — replies routed, exchanges
// ended, callers resumed — through the inspector, and prints the self time
// per reply of each function (the untimed opening of exchanges left out).
// `alloc` prints the heap bytes a burst of replies allocates per reply
// while it is routed — before the callers resume — in bursts small enough
// to fit the young generation.
import { Session } from 'node:inspector/promises';
import { IMPLEMENTATIONS } from './implementations/index.js';
import { median, minorGc } from './harness.js';
import { ANSWERED } from './remote.js';
import { closedLoop, openBackground, routeRound } from './scenarios.js';
import { DEFAULT_DEADLINE } from './implementations/types.js';

const [name = 'rrxc', scenario = 'one', openArg = '1'] = process.argv.slice(2);
const impl = IMPLEMENTATIONS.find((i) => i.name === name);
if (impl === undefined) throw new Error(`no implementation ${name}`);
const keepAlive = setInterval(() => {}, 2 ** 30);
const BATCH = 20_000;
if (scenario === 'one') {
  const instance = impl.create({ timeout: DEFAULT_DEADLINE, autoReply: true });
  for (let round = 0; round < 6; round++) {
    const { perSecond } = await closedLoop(instance, 200_000, 1_000, 1, 0);
    console.log(`${name} one: ${Math.round(perSecond)} exchanges/s`);
  }
  await instance.close();
} else {
  const open = Number(openArg);
  const instance = impl.create({ timeout: 600_000, autoReply: false });
  await openBackground(instance, open, new Array(open), new Array(open));
  if (scenario === 'replies') await profileReplies(instance);
  else if (scenario === 'alloc') await allocationPerReply(instance);
  else {
    for (let round = 0; round < 20; round++) {
      const rate = await routeRound(instance, BATCH);
      console.log(`${name} routing with ${open} open: ${Math.round(rate)} replies/s`);
    }
  }
}
clearInterval(keepAlive);
process.exit(0);

async function profileReplies(instance: Parameters<typeof routeRound>[0]): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  const WARM_UP = 5;
  const ROUNDS = 30;
  const selfMicros = new Map<string, number>();
  for (let round = 0; round < WARM_UP + ROUNDS; round++) {
    if (round < WARM_UP) {
      await routeRound(instance, BATCH);
      continue;
    }
    await routeRound(instance, BATCH, () => session.post('Profiler.start'));
    const { profile } = await session.post('Profiler.stop');
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    profile.samples!.forEach((id, i) => {
      const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
      // The inspector waiting for its own messages, not the routing.
      if (functionName === 'dispatch' || functionName === '(idle)') return;
      const key = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
      selfMicros.set(key, (selfMicros.get(key) ?? 0) + profile.timeDeltas![i]!);
    });
  }
  const replies = ROUNDS * BATCH;
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
  console.log(`${name}: ${((total * 1000) / replies).toFixed(0)} ns of samples per reply (profiler overhead included)`);
  for (const [key, micros] of [...selfMicros].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${((micros * 1000) / replies).toFixed(0).padStart(6)} ns  ${((100 * micros) / total).toFixed(1).padStart(5)} %  ${key}`);
  }
}

async function allocationPerReply(instance: Parameters<typeof routeRound>[0]): Promise<void> {
  const BURST = 2_000;
  const perReply: number[] = [];
  for (let round = 0; round < 30; round++) {
    const settled = [];
    for (let i = 0; i < BURST; i++) settled.push(instance.exchange(1, ANSWERED));
    await new Promise(setImmediate);
    minorGc();
    const before = process.memoryUsage().heapUsed;
    instance.remote.flush();
    perReply.push((process.memoryUsage().heapUsed - before) / BURST);
    await Promise.allSettled(settled);
  }
  console.log(`${name}: ${Math.round(median(perReply))} bytes allocated per routed reply (median of 30 bursts of ${BURST})`);
}
