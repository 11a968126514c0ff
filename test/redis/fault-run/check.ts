/**
 * The fault run's verdict: reads every event of the run and checks, for
 * every correlation ID, what docs/distributed.md and docs/errors.md promise:
 *
 * - never delivered twice;
 * - never both delivered and rolled back (a rollback anywhere: the exchange's
 *   `unanswered`, `onRollback`, a `rolled-back` outcome, `isRolledBack()`
 *   true, a compensation) — except for an exchange its owner never ended
 *   because it was killed ("Owner crash": rolled back as a whole, also a
 *   reply it had received in its last moments), counted apart;
 * - every outcome a forwarder reports agrees with what the owner did:
 *   `delivered` iff the owner delivered that copy, `duplicate` only if
 *   another copy was delivered, an error ("unknown, not delivered by this
 *   call") never for the copy the owner delivered, `unmatched` only where a
 *   documented loss explains it;
 * - compensation at most once;
 * - no silent loss: every reply call settles, every exchange of a live
 *   owner ends, every ID ends answered or in `unanswered`.
 */
import type { FaultEvent } from '../../helpers/fault-log.js';

type Of<K extends FaultEvent['k']> = Extract<FaultEvent, { k: K }>;

export interface Violation {
  readonly rule: string;
  readonly id: string;
  readonly message: string;
  /** The faults whose window overlaps the ID's life. */
  readonly faults: readonly string[];
  readonly history: readonly string[];
}

export interface Verdict {
  readonly violations: readonly Violation[];
  /** Things the docs allow but a user should know happened (owner-crash rollbacks of delivered replies, documented `unmatched`). */
  readonly allowed: Readonly<Record<string, number>>;
  readonly summary: string;
  readonly ids: number;
  readonly replies: number;
}

interface Fault {
  readonly fid: number;
  readonly fault: string;
  readonly target: string | undefined;
  readonly start: number;
  readonly end: number;
}

interface Reply {
  readonly start: Of<'reply-start'>;
  result?: Of<'reply-result'>;
}

interface IdState {
  readonly id: string;
  readonly owner: string;
  readonly xid: string;
  readonly chosen: boolean;
  readonly registeredAt: number;
  readonly timeout: number;
  readonly deliveries: Of<'delivered'>[];
  readonly deliveredCh: Of<'delivered-ch'>[];
  ended?: Of<'ended'>;
  readonly rollbackHooks: FaultEvent[];
  readonly replies: Map<string, Reply>;
  readonly compensations: Of<'compensate'>[];
  readonly audits: Of<'audit'>[];
  readonly redisErrors: Of<'redis-error'>[];
  readonly history: FaultEvent[];
}

/** The copy number of the late copies the driver sends after the traffic (see driver.ts). */
export const LATE_COPY = 9;
/** The controller's default `duplicateWindow` (the instances keep it): a copy later than this after the answer may be `unmatched`. */
const DUPLICATE_WINDOW = 60_000;
/** How long after a fault its effects may still be felt (fencing, reconnects, settles). */
const AFTERMATH = 4_000;
/** Longest a registerResponse may take (docs: ≈ 2 × (forwardTimeout + retryInterval) + 5 × commandTimeout, here ≈ 4.4 s), with room for a loaded machine. */
const REPLY_BOUND = 15_000;

/** What the docs say, where they may change while the library is being fixed. */
export interface DocsModel {
  /**
   * docs/errors.md says a `BackplaneError` means "this call did not deliver
   * it": an error for the copy the owner delivered is then a contradiction;
   * else (docs/distributed.md: "An error means **unknown**") it is allowed.
   */
  readonly errorMeansNotDelivered: boolean;
}

/** Reads the {@link DocsModel} from the docs as they are now. */
export function readDocsModel(errorsMd: string): DocsModel {
  const row = errorsMd.split('\n').find((line) => line.startsWith('| `BackplaneError`')) ?? '';
  return { errorMeansNotDelivered: /did not deliver it/.test(row) };
}

/** How soon after a delivery a SIGKILL of the owner is "within a round trip" (docs: ≈ 0.1 ms on loopback; generous for a loaded machine). */
const RECORD_WINDOW = 50;

export function check(events: readonly FaultEvent[], docs: DocsModel = { errorMeansNotDelivered: true }): Verdict {
  const faults: Fault[] = [];
  const open = new Map<number, Of<'fault'>>();
  const killedAt = new Map<string, number>();
  const hung: Of<'hung'>[] = [];
  const runaway: Of<'runaway'>[] = [];
  let lastT = 0;
  for (const e of events) {
    lastT = Math.max(lastT, e.t);
    if (e.k === 'fault' && e.phase === 'start') open.set(e.fid, e);
    if (e.k === 'fault' && e.phase === 'end') {
      const s = open.get(e.fid);
      open.delete(e.fid);
      if (s !== undefined) faults.push({ fid: e.fid, fault: s.fault, target: s.target, start: s.t, end: e.t });
    }
    if (e.k === 'killed') killedAt.set(e.name, e.t);
    if (e.k === 'hung') hung.push(e);
    if (e.k === 'runaway') runaway.push(e);
  }
  for (const s of open.values()) faults.push({ fid: s.fid, fault: s.fault, target: s.target, start: s.t, end: lastT });
  const restarts = faults.filter((f) => f.fault === 'redis-restart');

  // Per ID.
  const ids = new Map<string, IdState>();
  const xidsOf = new Map<string, { owner: string; ids: readonly string[]; at: number }>();
  const stateOf = (id: string): IdState | undefined => ids.get(id);
  const violations: Violation[] = [];
  const allowed: Record<string, number> = {};
  const allow = (what: string): void => void (allowed[what] = (allowed[what] ?? 0) + 1);
  const harness: string[] = [];

  for (const e of events) {
    switch (e.k) {
      case 'registered':
        xidsOf.set(e.xid, { owner: e.inst, ids: e.ids, at: e.t });
        e.ids.forEach((id, i) => {
          if (ids.has(id)) harness.push(`ID ${id} registered twice`);
          ids.set(id, {
            id,
            owner: e.inst,
            xid: e.xid,
            chosen: e.chosen[i] === true,
            registeredAt: e.t,
            timeout: e.timeout,
            deliveries: [],
            deliveredCh: [],
            rollbackHooks: [],
            replies: new Map(),
            compensations: [],
            audits: [],
            redisErrors: [],
            history: [e],
          });
        });
        break;
      case 'delivered':
      case 'delivered-ch':
      case 'reply-start':
      case 'reply-result':
      case 'compensate':
      case 'audit':
      case 'conflict': {
        const s = stateOf(e.id);
        if (s === undefined) {
          harness.push(`event for an unknown ID: ${JSON.stringify(e)}`);
          break;
        }
        s.history.push(e);
        if (e.k === 'delivered') s.deliveries.push(e);
        if (e.k === 'delivered-ch') s.deliveredCh.push(e);
        if (e.k === 'reply-start') s.replies.set(`${e.inst}/${e.rid}`, { start: e });
        if (e.k === 'reply-result') {
          const r = s.replies.get(`${e.inst}/${e.rid}`);
          if (r === undefined) harness.push(`result without start: ${JSON.stringify(e)}`);
          else r.result = e;
        }
        if (e.k === 'compensate') s.compensations.push(e);
        if (e.k === 'audit') s.audits.push(e);
        break;
      }
      case 'ended': {
        const x = xidsOf.get(e.xid);
        for (const id of x?.ids ?? []) {
          const s = stateOf(id)!;
          s.ended = e;
          s.history.push(e);
        }
        break;
      }
      case 'rollback-hook':
      case 'rollback-tagged':
      case 'redis-error':
      case 'store-error':
        for (const id of e.ids) {
          const s = stateOf(id);
          if (s === undefined) continue;
          s.history.push(e);
          if (e.k === 'rollback-hook') s.rollbackHooks.push(e);
          if (e.k === 'redis-error') s.redisErrors.push(e);
        }
        break;
      default:
        break;
    }
  }

  const outcomeCounts = new Map<string, number>();
  const perFault = new Map<number, { ids: number; outcomes: Map<string, number>; violations: number }>();
  for (const f of faults) perFault.set(f.fid, { ids: 0, outcomes: new Map(), violations: 0 });
  const bump = (map: Map<string, number>, key: string): void => void map.set(key, (map.get(key) ?? 0) + 1);
  let replies = 0;

  for (const s of ids.values()) {
    // The ID's active life: until its exchange ended and its copies settled (not the audit, nor the late copies after the traffic).
    const activeEnd = Math.max(...s.history.filter((e) => e.k !== 'audit' && !('copy' in e && e.copy === LATE_COPY)).map((e) => e.t));
    const faultsIn = (from: number, to: number): Fault[] => faults.filter((f) => f.start <= to && f.end + AFTERMATH >= from);
    const overlapping = faultsIn(s.registeredAt, activeEnd);
    const label = (f: Fault): string => `#${f.fid} ${f.fault}${f.target !== undefined ? ` ${f.target}` : ''} at +${Math.round(f.start - s.registeredAt)}ms`;
    const found: { rule: string; message: string; at: number }[] = [];
    const flag = (rule: string, message: string, at = activeEnd): void => void found.push({ rule, message, at });

    const ownerKilled = killedAt.get(s.owner);
    const crashed = s.ended === undefined && ownerKilled !== undefined;
    const delivered = s.deliveries.length > 0 || s.deliveredCh.length > 0;
    const deliveredCopies = new Set(s.deliveries.map((d) => d.copy));
    const endedAnswered = s.ended?.answered.includes(s.id) === true;
    const endedUnanswered = s.ended?.unanswered.includes(s.id) === true;
    const results = [...s.replies.values()].flatMap((r) => (r.result === undefined ? [] : [r.result]));

    // 1. Never delivered twice.
    if (s.deliveries.length > 1 || s.deliveredCh.length > 1) flag('delivered-twice', `the owner delivered ${Math.max(s.deliveries.length, s.deliveredCh.length)} times`);
    const toldDelivered = results.filter((r) => r.outcome === 'delivered');
    if (toldDelivered.length > 1) flag('delivered-twice', `${toldDelivered.length} registerResponse calls were told \`delivered\` (copies ${toldDelivered.map((r) => r.copy).join(', ')})`);

    // 2. Never both delivered and rolled back.
    const rollbacks: string[] = [];
    if (endedUnanswered) rollbacks.push('in ExchangeResult.unanswered');
    if (s.rollbackHooks.length > 0) rollbacks.push('in onRollback');
    for (const r of results) if (r.outcome === 'rolled-back') rollbacks.push(`\`rolled-back\` told to ${r.inst} (copy ${r.copy})`);
    for (const a of s.audits) if (a.rolledBack === true) rollbacks.push(`isRolledBack() true on ${a.inst}`);
    for (const c of s.compensations) rollbacks.push(`compensated on ${c.inst} (copy ${c.copy})`);
    const firstDeliveryAt = s.deliveredCh[0]?.t ?? s.deliveries[0]?.t;
    const inRecordWindow =
      ownerKilled !== undefined &&
      firstDeliveryAt !== undefined &&
      (ownerKilled - firstDeliveryAt <= RECORD_WINDOW || s.history.some((e) => e.k === 'redis-error' && e.inst === s.owner && e.t >= firstDeliveryAt && e.t <= ownerKilled));
    const localDelivery = s.deliveredCh.some((d) => !d.forwarded) || s.deliveries.some((d) => d.by === s.owner);
    if (delivered && rollbacks.length > 0) {
      if (crashed) allow('owner crashed before ending its exchange: a delivered reply rolled back with it (docs: "Owner crash")');
      else if (inRecordWindow && localDelivery) allow('owner SIGKILLed before a local delivery was recorded (the documented exception)');
      else if (inRecordWindow) {
        flag(
          'delivered-and-rolled-back',
          `a *forwarded* copy was delivered to the exchange (which ended with it answered) and the owner was SIGKILLed before it was recorded, yet: ${rollbacks.join('; ')}; docs/distributed.md: only a delivery "made directly at the owner" has this window`,
        );
      } else flag('delivered-and-rolled-back', `the owner delivered copy ${[...deliveredCopies].join(', ') || '?'} and its exchange ended with it answered, yet: ${rollbacks.join('; ')}`);
    }
    if (delivered && s.ended !== undefined && !endedAnswered) flag('harness', 'a delivery the ended exchange does not list as answered');

    // 3. Each forwarder's outcome agrees with the owner.
    for (const r of s.replies.values()) {
      replies++;
      const res = r.result;
      if (res === undefined) {
        const forwarderKilled = killedAt.get(r.start.inst);
        if (forwarderKilled === undefined) flag('reply-never-settled', `registerResponse on ${r.start.inst} (copy ${r.start.copy}) never settled`);
        else bump(outcomeCounts, 'forwarder killed');
        continue;
      }
      const key = res.error !== undefined ? `${res.outcome}: ${res.error.code ?? res.error.name ?? '?'}${res.error.failure !== undefined ? ` ${res.error.failure}` : ''}` : res.outcome;
      bump(outcomeCounts, key);
      for (const f of overlapping) bump(perFault.get(f.fid)!.outcomes, key);
      if (res.t - r.start.t > REPLY_BOUND) flag('reply-unbounded', `registerResponse on ${res.inst} took ${Math.round(res.t - r.start.t)} ms`, res.t);
      const thisCopyDelivered = s.deliveries.some((d) => d.copy === res.copy && d.by === res.inst);
      const otherCopyDelivered = s.deliveries.some((d) => !(d.copy === res.copy && d.by === res.inst));
      switch (res.outcome) {
        case 'delivered':
          if (!thisCopyDelivered && !(s.deliveries.length === 0 && s.deliveredCh.length > 0)) {
            flag('told-delivered-not-delivered', `${res.inst} was told \`delivered\` for copy ${res.copy}, but the owner delivered ${s.deliveries.length === 0 ? 'nothing' : `copy ${[...deliveredCopies].join(', ')}`}`, res.t);
          }
          break;
        case 'duplicate':
          if (thisCopyDelivered) flag('told-duplicate-for-delivered-copy', `${res.inst} was told \`duplicate\` for copy ${res.copy}, the very copy the owner delivered`, res.t);
          else if (!otherCopyDelivered && s.deliveredCh.length === 0) flag('told-duplicate-nothing-delivered', `${res.inst} was told \`duplicate\` for copy ${res.copy}, but the owner delivered no copy`, res.t);
          break;
        case 'failed':
          if (thisCopyDelivered && !docs.errorMeansNotDelivered) allow('BackplaneError (unknown) for a copy the owner delivered (docs/distributed.md: "An error means unknown")');
          else if (thisCopyDelivered) {
            flag(
              'error-for-delivered-copy',
              `${res.inst}'s registerResponse rejected (${res.error?.code ?? '?'} ${res.error?.failure ?? ''}: ${res.error?.message ?? ''}) for copy ${res.copy}, which the owner delivered; docs/errors.md: "this call did not deliver it"`,
              res.t,
            );
          }
          break;
        case 'unmatched': {
          const excuse = unmatchedExcuse(s, res, restarts, faults, killedAt);
          if (excuse.allowed) allow(`unmatched: ${excuse.why}`);
          else flag(excuse.rule, `${res.inst} was told \`unmatched\` for copy ${res.copy} at +${Math.round(res.t - s.registeredAt)} ms: ${excuse.why}`, res.t);
          break;
        }
        case 'rolled-back':
          break;
        case 'committed':
          flag('told-committed-without-worker', `${res.inst} was told \`committed\`, but no worker claimed a commit in this run`);
          break;
        default:
          flag('unexpected-outcome', `${res.inst} was told \`${res.outcome}\``);
      }
    }

    // 4. Compensation at most once.
    if (s.compensations.length > 1) flag('compensated-twice', `compensated ${s.compensations.length} times: ${s.compensations.map((c) => `${c.inst} (copy ${c.copy})`).join(', ')}`);

    // 5. No silent loss.
    if (s.ended === undefined && ownerKilled === undefined) flag('exchange-never-ended', `the exchange ${s.xid} on ${s.owner} (alive) never ended`);
    if (s.ended !== undefined && !endedAnswered && !endedUnanswered && !(s.ended.committed ?? []).includes(s.id) && !(s.ended.undecided ?? []).includes(s.id)) {
      flag('id-unaccounted', `the exchange ended (${s.ended.status}) with the ID neither answered nor in unanswered/committed/undecided`);
    }

    if (s.ended?.undecided?.includes(s.id) === true && ownerKilled === undefined) {
      // Undecided: its rollback claim failed (the controller keeps retrying it), or a forwarded reply
      // was being recorded as delivered when the exchange was fenced (Redis decides: answered, or not).
      const decided = s.history.some(
        (e) =>
          ((e.k === 'rollback-tagged' || e.k === 'rollback-hook') && e.t >= s.ended!.t) ||
          (e.k === 'audit' && (e.rolledBack === true || e.answered === true)) ||
          (e.k === 'reply-result' && e.outcome === 'rolled-back'),
      );
      const lostSince = restarts.some((r) => r.end >= s.ended!.t);
      if (!decided && !lostSince) {
        flag('undecided-never-decided', `ended \`undecided\` at +${Math.round(s.ended.t - s.registeredAt)} ms on ${s.owner}, alive to the end, and neither tagged since nor recorded answered (design-12: the controller keeps retrying the claim; a held forward's record decides)`);
      }
    }

    for (const f of overlapping) perFault.get(f.fid)!.ids++;
    for (const v of found) {
      for (const f of overlapping) perFault.get(f.fid)!.violations++;
      violations.push({ rule: v.rule, message: v.message, id: s.id, faults: faultsIn(s.registeredAt, v.at).map(label), history: s.history.map((e) => describeEvent(e, s.registeredAt)) });
    }
  }
  for (const h of hung) {
    const unhung = events.find((e) => e.k === 'unhung' && e.name === h.name && e.t > h.t);
    violations.push({
      rule: 'instance-hung',
      id: '-',
      message: `${h.name}'s event loop did not answer a ping for ${unhung === undefined ? 'the rest of the run' : `${Math.round((unhung as Of<'unhung'>).silentMs)} ms`} (noticed ${Math.round(h.silentMs)} ms after it was sent)`,
      faults: faults.filter((f) => f.start <= h.t && f.end + AFTERMATH >= h.t - h.silentMs).map((f) => `#${f.fid} ${f.fault}`),
      history: [],
    });
  }
  for (const r of runaway) {
    violations.push({ rule: 'instance-runaway', id: '-', message: `${r.name} held ${Math.round(r.rss / 1e6)} MB: killed by the watchdog`, faults: faults.filter((f) => f.start <= r.t && f.end + 30_000 >= r.t).map((f) => `#${f.fid} ${f.fault}`), history: [] });
  }
  for (const h of harness) violations.push({ rule: 'harness', id: '-', message: h, faults: [], history: [] });

  const exchangeStatus = new Map<string, number>();
  for (const e of events) if (e.k === 'ended') bump(exchangeStatus, e.status);
  const byRule = new Map<string, number>();
  for (const v of violations) bump(byRule, v.rule);
  const fmt = (map: Map<string, number> | Record<string, number>): string =>
    [...(map instanceof Map ? map.entries() : Object.entries(map))]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const lines = [
    `${ids.size} IDs in ${xidsOf.size} exchanges (${fmt(exchangeStatus)}), ${replies} reply copies, ${[...ids.values()].reduce((n, s) => n + s.compensations.length, 0)} compensations`,
    `outcomes: ${fmt(outcomeCounts)}`,
    ...faults.map((f) => {
      const p = perFault.get(f.fid)!;
      return `fault #${f.fid} ${f.fault}${f.target !== undefined ? ` (${f.target})` : ''} ${Math.round(f.end - f.start)} ms: ${p.ids} IDs, ${p.violations} violations; ${fmt(p.outcomes)}`;
    }),
    `allowed by the docs: ${fmt(allowed) || 'none'}`,
    `violations: ${violations.length}${violations.length > 0 ? ` (${fmt(byRule)})` : ''}`,
  ];
  return { violations, allowed, summary: lines.join('\n'), ids: ids.size, replies };
}

/** How long after an empty restart a live owner may not listen yet: the adapter's reconnect delay (≤ 1 s) and its resubscription. */
const RECONNECT_WINDOW = 1_500;

/**
 * Whether the docs explain an `unmatched` outcome, else which promise it
 * breaks. docs/distributed.md allows it for: a Redis that restarted empty
 * ("When Redis restarts without persistence": tags lost; a crashed owner's
 * pending set or ownership records lost; answered hashes lost once the owner
 * is gone), the registration race of IDs the application chose, a write
 * that failed (reported on `rrxc:redis:error`), an ID registered in a killed
 * owner's last turn. design-12: an undecided ID is retried, and a late reply
 * to it rejects while it cannot be decided — never `unmatched`.
 */
function unmatchedExcuse(
  s: IdState,
  res: Of<'reply-result'>,
  restarts: readonly Fault[],
  faults: readonly Fault[],
  killedAt: ReadonlyMap<string, number>,
): { allowed: boolean; why: string; rule: string } {
  const ok = (why: string) => ({ allowed: true, why, rule: '' });
  const bad = (rule: string, why: string) => ({ allowed: false, why, rule });
  const ownerKilled = killedAt.get(s.owner);
  const ownerDead = ownerKilled !== undefined && ownerKilled <= res.t;
  const restartIn = (from: number, to: number): Fault | undefined => restarts.find((r) => r.end >= from && r.start <= to);
  const failed = (operation: string): boolean => s.redisErrors.some((e) => e.operation === operation && e.t <= res.t);

  // Answered: a later copy is `duplicate` (within the duplicate window, which outlasts the run).
  const firstDelivery = s.deliveries[0]?.t ?? s.deliveredCh[0]?.t;
  if (firstDelivery !== undefined && firstDelivery <= res.t) {
    if (res.t - (s.ended?.t ?? firstDelivery) > DUPLICATE_WINDOW) return ok('answered longer ago than the duplicate window');
    const restart = restartIn(s.registeredAt, res.t);
    if (ownerDead && restart !== undefined) return ok('answered, then Redis restarted empty and the owner is gone ("answered hashes, a|… records" row)');
    if (ownerDead && (failed('own') || failed('end'))) return ok("answered by an owner since killed whose write of it failed (rrxc:redis:error)");
    return bad(
      'unmatched-for-delivered',
      `the owner ${s.owner} delivered copy ${s.deliveries.map((d) => d.copy).join(', ') || '?'} at +${Math.round(firstDelivery - s.registeredAt)} ms and is ${ownerDead ? 'dead (no Redis restart, no failed write: its answered hash/record should say `duplicate`)' : 'alive'}${restart !== undefined ? ` (Redis restarted empty: fault #${restart.fid})` : ''}: expected \`duplicate\``,
    );
  }

  // Decided rolled back: the tag says `rolled-back`, until a Redis restart loses it.
  const tagged = [
    ...(s.ended?.unanswered.includes(s.id) === true ? [s.ended.t] : []),
    ...s.history.filter((e) => e.k === 'rollback-tagged' || (e.k === 'reply-result' && e.outcome === 'rolled-back')).map((e) => e.t),
  ].filter((t) => t <= res.t);
  if (tagged.length > 0) {
    const at = Math.min(...tagged);
    const restart = restartIn(at + 1, res.t);
    if (restart !== undefined) return ok('rolled back, then Redis restarted empty ("rollback tags" row)');
    return bad('unmatched-after-rollback', `rolled back (tagged) at +${Math.round(at - s.registeredAt)} ms, no Redis restart since: a late reply must be \`rolled-back\``);
  }
  if (s.ended?.undecided?.includes(s.id) === true && s.ended.t <= res.t) {
    if (restartIn(s.ended.t, res.t) !== undefined) return ok('undecided, then Redis restarted empty: no record of the ID is left ("pending sets, ownership records" row)');
    return bad('unmatched-while-undecided', `its exchange ended ${s.ended.status} with it \`undecided\` at +${Math.round(s.ended.t - s.registeredAt)} ms; design-12: a late reply re-attempts the claim and rejects while it cannot be decided`);
  }

  // Pending (open exchange, or a crashed owner's), as far as Redis should know.
  const restart = restartIn(s.registeredAt, res.t);
  if (restart !== undefined && ownerDead) return ok('pending at a Redis restart, owner killed ("pending sets, ownership records" row)');
  if (failed(s.chosen ? 'register' : 'own')) return ok(`its ${s.chosen ? 'register' : 'own'} write failed (reported on rrxc:redis:error)`);
  const aroundRegistration = faults.find((f) => f.fault !== 'owner-kill' && f.start <= s.registeredAt + 200 && f.end + 1_000 >= s.registeredAt);
  if (s.chosen && aroundRegistration !== undefined && res.t <= aroundRegistration.end + 1_500) {
    return ok(`registration race under fault #${aroundRegistration.fid} ${aroundRegistration.fault}`);
  }
  if (!s.chosen && ownerKilled !== undefined && ownerKilled >= s.registeredAt && ownerKilled - s.registeredAt < 100) return ok("registered in the killed owner's last turn");
  // Registered while the owner's command connection was cut: its write waited behind the failed ones, and died with the owner.
  const cut = faults.find((f) => f.fault.startsWith('client-kill') && f.target === s.owner && f.start <= s.registeredAt && s.registeredAt <= f.end + RECONNECT_WINDOW);
  if (cut !== undefined && ownerDead) return ok(`registered while its owner's command connection was cut (fault #${cut.fid}), owner killed before its writes were sent again ("command connection cut" row)`);
  // Until the owner reconnected and listens again, nobody receives the forward and its lease is gone with Redis' data.
  if (restarts.some((r) => r.start <= res.t && res.t <= r.end + RECONNECT_WINDOW)) return ok('in the reconnect window after an empty restart, before the owner listens again ("leases" row)');
  if (restart !== undefined) {
    return bad('unmatched-after-restart-fence', `its exchange was open when Redis restarted empty (fault #${restart.fid}), owner alive: the table says it fences and "their replies are \`rolled-back\` everywhere"`);
  }
  return bad('unmatched-unexplained', `pending${ownerDead ? ' at a killed owner' : ''}, no Redis restart, no failed write, no registration race explains it`);
}

/** One line of an ID's history, times relative to its registration. */
function describeEvent(e: FaultEvent, t0: number): string {
  const at = `+${Math.round(e.t - t0)}ms ${e.inst}`;
  switch (e.k) {
    case 'registered':
      return `${at} registered ${e.xid} (${e.ids.length} IDs, timeout ${e.timeout} ms)`;
    case 'delivered':
      return `${at} OWNER DELIVERED copy ${e.copy} (received by ${e.by})`;
    case 'delivered-ch':
      return `${at} rrxc:response:delivered on the owner${e.forwarded ? ' (forwarded)' : ' (local)'}`;
    case 'ended':
      return `${at} exchange ended ${e.status}${e.reason !== undefined ? ` (${e.reason.slice(0, 80)})` : ''}; unanswered [${e.unanswered.length}]${e.undecided !== undefined ? ` undecided [${e.undecided.length}]` : ''}`;
    case 'reply-start':
      return `${at} receives copy ${e.copy} (rid ${e.rid})`;
    case 'reply-result':
      return `${at} copy ${e.copy} → ${e.outcome}${e.error !== undefined ? ` ${e.error.code ?? ''} ${e.error.failure ?? ''}: ${e.error.message.slice(0, 120)}` : ''}${e.compensated ? ' (compensated)' : ''}`;
    case 'compensate':
      return `${at} COMPENSATE copy ${e.copy}`;
    case 'audit':
      return `${at} isRolledBack → ${e.error !== undefined ? `error ${e.error.code ?? e.error.message}` : String(e.rolledBack)}`;
    case 'rollback-hook':
      return `${at} onRollback`;
    case 'rollback-tagged':
      return `${at} rrxc:rollback:tagged`;
    case 'redis-error':
      return `${at} rrxc:redis:error ${e.operation}: ${e.message ?? ''}`;
    case 'store-error':
      return `${at} rrxc:tag-store:error ${e.message ?? ''}`;
    case 'conflict':
      return `${at} rrxc:redis:conflict`;
    default:
      return `${at} ${e.k}`;
  }
}
