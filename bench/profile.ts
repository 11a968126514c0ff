// Profiling entry (not part of `npm run bench`): drives one implementation
// through one scenario long enough for `node --cpu-prof` / `--trace-gc`.
//   node --expose-gc --cpu-prof --import tsx bench/profile.ts rrxc one|routing [open]
import { IMPLEMENTATIONS } from './implementations/index.js';
import { closedLoop, openBackground, routeRound } from './scenarios.js';
import { DEFAULT_DEADLINE } from './implementations/types.js';

const [name = 'rrxc', scenario = 'one', openArg = '1'] = process.argv.slice(2);
const impl = IMPLEMENTATIONS.find((i) => i.name === name);
if (impl === undefined) throw new Error(`no implementation ${name}`);
const keepAlive = setInterval(() => {}, 2 ** 30);
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
  for (let round = 0; round < 20; round++) {
    const rate = await routeRound(instance, 20_000);
    console.log(`${name} routing with ${open} open: ${Math.round(rate)} replies/s`);
  }
}
clearInterval(keepAlive);
process.exit(0);
