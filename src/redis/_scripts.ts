import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
import type { RedisConnection } from './_connection.js';

/*
 * Every time in these scripts is Redis server time (TIME), so that expiry and
 * deadlines do not depend on the clocks of the instances agreeing.
 *
 * Tag hash (one per correlation ID): field = tag, value = expiry (server ms).
 * The key itself expires with its last tag (PEXPIREAT), so nothing stays
 * without a TTL.
 *
 * Ownership (one key per correlation ID the application chose), a string:
 *   p|<instance>|<deadline or empty>   pending at <instance>
 *   a|<instance>|<deliverer or empty>  answered at <instance>; <deliverer>, `<from> <seq>`,
 *                                      names the forward it delivered, when it was one
 *
 * For the IDs an instance generated (`<instance>~…`) the owner is in the ID;
 * their state lives in two sorted sets per instance, in the instance's hash
 * slot (hash tag `{<instance>}`, with its lease), written once per event-loop turn:
 *   pending set:  member = ID, score = deadline (server ms), or
 *                 -<settled at> once another instance rolled it back
 *   answered set: member = ID, score = when it was answered (duplicate window)
 *   forwarded set: member = `<ID>\n<from> <seq>`, score = when the owner recorded
 *                 that forward as delivered — before handing it to its exchange,
 *                 in the script that publishes the acknowledgement: what a
 *                 forwarder whose acknowledgement was lost asks
 *
 * While an owner's lease lives, nothing here rolls back its IDs: the owner
 * decides (it ends its exchanges itself), and a non-owner that cannot reach
 * it answers "unknown". Once the lease is gone, a pending ID is rolled back:
 * the owner records a forwarded reply as answered before it hands it over,
 * so a dead owner's pending ID was not delivered as a forward.
 *
 * Every rollback written here is a claim against the committed tag (see
 * `claim_rollback`): once a worker settled an ID as committed, nothing here
 * tags it for rollback, and the outcome is `committed`.
 */
const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function put_tag(key, tag, ttl, now)
  local exp = now + ttl
  local last = exp
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if fields[i] ~= tag then
      local e = tonumber(fields[i + 1])
      if e <= now then redis.call('HDEL', key, fields[i]) elseif e > last then last = e end
    end
  end
  redis.call('HSET', key, tag, string.format('%.0f', exp))
  redis.call('PEXPIREAT', key, string.format('%.0f', last))
end
local function has_tag(key, tag, now)
  local e = redis.call('HGET', key, tag)
  return e ~= false and tonumber(e) > now
end
local function parse(ownership)
  return string.match(ownership, '^(%a)|([^|]*)|?(.*)$')
end
-- TagStore.claim: adds tag unless key carries a live tag among tag, then rivals (in order);
-- answers that tag, or false when it added tag.
local function claim(key, tag, ttl, rivals, now)
  if has_tag(key, tag, now) then return tag end
  for _, rival in ipairs(rivals) do
    if has_tag(key, rival, now) then return rival end
  end
  put_tag(key, tag, ttl, now)
  return false
end
-- The rollback decision on an ID: claim(rollback, [committed]), the committed tag looked at first.
local function claim_rollback(key, rollback, ttl, committed, now)
  if committed ~= '' and has_tag(key, committed, now) then return 'committed' end
  if rollback ~= '' then claim(key, rollback, ttl, {}, now) end
  return 'rolled-back'
end
-- What a record naming the forward it delivered (recorded) answers the forward asking ('' for none).
local function by_forward(recorded, asking)
  if asking ~= '' and recorded == asking then return 'delivered' end
  return 'duplicate'
end
`;

/** KEYS: tag hash. ARGV: tag, ttl (ms, > 0). */
const TAG = `${PRELUDE}
put_tag(KEYS[1], ARGV[1], tonumber(ARGV[2]), now_ms())
return 1`;

/** KEYS: tag hash. ARGV: tag. Answers 1 if a live tag was removed. */
const UNTAG = `${PRELUDE}
local e = redis.call('HGET', KEYS[1], ARGV[1])
if not e then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if tonumber(e) > now_ms() then return 1 end
return 0`;

/** KEYS: tag hash. Answers the live tags. */
const GET_TAGS = `${PRELUDE}
local now = now_ms()
local fields = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #fields, 2 do
  if tonumber(fields[i + 1]) > now then live[#live + 1] = fields[i] end
end
return live`;

/**
 * KEYS: tag hash. ARGV: tag, ttl (ms, > 0), then the rival tags. Answers
 * false (nil) when the tag was added, else the live tag that held the claim.
 */
const CLAIM = `${PRELUDE}
return claim(KEYS[1], ARGV[1], tonumber(ARGV[2]), {unpack(ARGV, 3)}, now_ms())`;

/**
 * KEYS: ownership. ARGV: owner, ms until the deadline (-1: none), ms to keep
 * the ownership after the deadline, ms to keep it without a deadline.
 */
const REGISTER = `${PRELUDE}
local remaining = tonumber(ARGV[2])
if remaining < 0 then
  redis.call('SET', KEYS[1], 'p|' .. ARGV[1] .. '|', 'PX', ARGV[4])
else
  local deadline = now_ms() + remaining
  redis.call('SET', KEYS[1], 'p|' .. ARGV[1] .. '|' .. string.format('%.0f', deadline), 'PX', remaining + tonumber(ARGV[3]))
end
return 1`;

/**
 * The owner gives an ID up, its exchange ended. KEYS: ownership, tag hash.
 * ARGV: owner, answered (1/0), duplicate window ms (0: none), rollback tag,
 * rollback ttl ms, committed tag. Answers 1 when the ownership was this
 * owner's; 2 when the ID was answered here although another instance
 * already rolled it back; 0 otherwise. An unanswered ID is claimed for
 * rollback against the committed tag.
 */
const DISOWN = `${PRELUDE}
local now = now_ms()
local held = redis.call('GET', KEYS[1])
local state, owner, rest
if held then state, owner, rest = parse(held) end
local mine = held and owner == ARGV[1]
if ARGV[2] == '1' then
  if mine then
    if tonumber(ARGV[3]) > 0 then
      local value = 'a|' .. ARGV[1]
      if state == 'a' then value = held end
      redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
    else
      redis.call('DEL', KEYS[1])
    end
    return 1
  end
  if not held and has_tag(KEYS[2], ARGV[4], now) then return 2 end
  return 0
end
-- The owner's exchange ended without it: whatever the record said (pending, or reserved
-- by a forward it did not deliver), the decision is the rollback claim, in this same step.
if mine then redis.call('DEL', KEYS[1]) end
claim_rollback(KEYS[2], ARGV[4], tonumber(ARGV[5]), ARGV[6], now)
if mine then return 1 end
return 0`;

/**
 * A forwarded reply to an ID the application chose is held in its exchange
 * at the owner, to be handed over once recorded: the record says
 * `answered` (and which forward) before the forwarder can learn of the
 * delivery, since both happen in this one step. KEYS: ownership, tag hash.
 * ARGV: owner, deliverer (`<from> <seq>`), rollback tag, channel,
 * acknowledgement message, ms to keep the record after the exchange's
 * deadline (the duplicate window, or as long as a forwarder may ask,
 * whichever is longer: the exchange's end writes nothing more for it; an
 * exchange without a deadline keeps the pending record's TTL, if longer).
 * Answers 1 when recorded; 0 when another owner holds the ID (nothing to record:
 * the controller decides alone, acknowledged all the same); 2 when another
 * instance had already rolled the ID back: refused, nothing written or published.
 */
const DELIVER = `${PRELUDE}
local now = now_ms()
local held = redis.call('GET', KEYS[1])
local result = 1
local value = 'a|' .. ARGV[1] .. '|' .. ARGV[2]
if held then
  local state, owner, rest = parse(held)
  if owner == ARGV[1] then
    local ttl = tonumber(ARGV[6])
    local deadline = tonumber(rest)
    if state == 'p' and deadline then
      ttl = ttl + math.max(0, deadline - now)
    elseif state == 'p' then
      ttl = math.max(ttl, redis.call('PTTL', KEYS[1]))
    end
    redis.call('SET', KEYS[1], value, 'PX', string.format('%.0f', ttl))
  else
    result = 0
  end
else
  if ARGV[3] ~= '' and has_tag(KEYS[2], ARGV[3], now) then return 2 end
  redis.call('SET', KEYS[1], value, 'PX', ARGV[6])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return result`;

/**
 * A non-owner decides an ID its owner did not answer for. KEYS: ownership, tag
 * hash. ARGV: owner seen, owner alive (1/0), 1 when the owner seen is this
 * very instance, rollback tag, rollback ttl ms, committed tag, deliverer
 * (`<from> <seq>` of the forward asking, or empty). Answers the outcome
 * (`delivered` when that very forward was the one delivered), or 'pending'
 * when the owner may still deliver (or may have: unknown). A live owner's
 * ID is never rolled back here, whatever its deadline: the owner ends its
 * exchanges itself, and one that stalled may have delivered.
 */
const SETTLE = `${PRELUDE}
local now = now_ms()
local held = redis.call('GET', KEYS[1])
if held then
  local state, owner, rest = parse(held)
  if state == 'a' then return by_forward(rest, ARGV[7]) end
  if owner ~= ARGV[1] or ARGV[2] ~= '0' then return 'pending' end
  redis.call('DEL', KEYS[1])
  return claim_rollback(KEYS[2], ARGV[4], tonumber(ARGV[5]), ARGV[6], now)
end
if ARGV[6] ~= '' and has_tag(KEYS[2], ARGV[6], now) then return 'committed' end
if has_tag(KEYS[2], ARGV[4], now) then return 'rolled-back' end
return 'unmatched'`;

/**
 * An instance's batch of one event-loop turn for the IDs it generated, and
 * the acknowledgements of the forwards it holds for delivery, published
 * here, once recorded: no forwarder learns of a delivery that Redis does
 * not hold.
 * KEYS: pending set, answered set, forwarded set. ARGV: pending-set TTL,
 * duplicate window (0: none), ms to the deadline of requests without one,
 * ms a forwarded entry is kept, rollback TTL ms (a rolled-back mark older
 * than that is gone), then four lists, each as a count followed by its
 * items: registered (ms to deadline, -1 for none; ID), held forwards (ID;
 * `<from> <seq>`; channel; its framed acknowledgement "delivered": replies
 * the owner holds and hands to their exchange once this script recorded
 * them), answered IDs, unanswered IDs.
 * Answers the answered IDs another instance had already rolled back
 * (conflicts), and the held forwards refused (another instance had rolled
 * the ID back: not delivered, their acknowledgement not sent) as their
 * places in the list.
 *
 * An unanswered ID stays in the pending set, marked rolled back
 * (`-<ended at>`): the owner's decision is in Redis in the same step as the
 * ID stops being pending, whether or not its rollback claim is written yet.
 */
const OWN = `${PRELUDE}
local now = now_ms()
local dup = tonumber(ARGV[2])
local far = tonumber(ARGV[3])
local i = 6
local n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  local remaining = tonumber(ARGV[i])
  if remaining < 0 then remaining = far end
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + remaining), ARGV[i + 1])
  i = i + 2
end
local conflicts = {}
local done = {}
-- s: the ID's score in the pending set (false: not there).
local function answer(id, s)
  if s and tonumber(s) < 0 then
    conflicts[#conflicts + 1] = id
  else
    if s then redis.call('ZREM', KEYS[1], id) end
    if dup > 0 then redis.call('ZADD', KEYS[2], now, id) end
  end
  done[id] = true
end
local refused = {}
-- The acknowledgements by channel, as lists: concatenated once (a string grown frame by frame is copied every time).
local out = {}
local held = tonumber(ARGV[i])
i = i + 1
for k = 1, held do
  local id = ARGV[i]
  local s = redis.call('ZSCORE', KEYS[1], id)
  if s and tonumber(s) < 0 and now + tonumber(s) < tonumber(ARGV[5]) then
    refused[#refused + 1] = k
  else
    answer(id, s)
    redis.call('ZADD', KEYS[3], now, id .. '\\n' .. ARGV[i + 1])
    local frames = out[ARGV[i + 2]]
    if not frames then
      frames = {}
      out[ARGV[i + 2]] = frames
    end
    frames[#frames + 1] = ARGV[i + 3]
  end
  i = i + 4
end
n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  if not done[ARGV[i]] then answer(ARGV[i], redis.call('ZSCORE', KEYS[1], ARGV[i])) end
  i = i + 1
end
n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  redis.call('ZADD', KEYS[1], string.format('%.0f', -now), ARGV[i])
  i = i + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if dup > 0 then
  -- Trimmed a turn's worth at a time: one big trim per heartbeat would hold Redis up.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('(%.0f', now - dup))
  redis.call('PEXPIRE', KEYS[2], dup)
end
if held > #refused then
  local keep = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('(%.0f', now - keep))
  redis.call('PEXPIRE', KEYS[3], keep)
end
for channel, frames in pairs(out) do redis.call('PUBLISH', channel, table.concat(frames)) end
return {conflicts, refused}`;

/**
 * Renews an instance's lease and trims its sets. KEYS: lease, pending set,
 * answered set. ARGV: token, lease ms, pending-set TTL (0: not started, no
 * sets yet), duplicate window, ms a pending entry is kept past its deadline,
 * rollback TTL. Answers what the lease held before (false: nothing).
 */
const BEAT = `${PRELUDE}
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', KEYS[2], 0, string.format('%.0f', now - tonumber(ARGV[5])))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. string.format('%.0f', tonumber(ARGV[6]) - now), '(0')
  redis.call('PEXPIRE', KEYS[2], ttl)
  local dup = tonumber(ARGV[4])
  if dup > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', now - dup))
    redis.call('PEXPIRE', KEYS[3], dup)
  end
end
return old`;

/**
 * A non-owner decides a generated ID its owner did not answer for. KEYS:
 * owner's lease, pending set, answered set, forwarded set. ARGV: ID,
 * duplicate window, 1 when the owner is this very instance, the
 * forwarded-set member of the forward asking (empty: none), rollback TTL
 * ms (a rolled-back mark older than that is gone). Answers the outcome
 * (`delivered` when that very forward was delivered), 'pending' when the
 * owner may still deliver (or may have: unknown), or 'none' when neither
 * of the owner's sets holds the ID and the owner is gone, or is this
 * instance (the tags decide); a live owner that did not answer for an ID
 * its sets do not hold (they were lost with Redis' data, or trimmed) is
 * 'pending' too: unknown. A `rolled-back` is the owner's set's decision;
 * the caller then claims the rollback tag against the committed one.
 *
 * While the owner's lease lives, its pending IDs are never rolled back
 * here, whatever their deadline: the owner ends its exchanges itself, and
 * one that stalled may have delivered. A forwarded reply is recorded (in
 * the answered and forwarded sets) before its owner hands it over, so a
 * dead owner's pending ID was not delivered as a forward.
 */
const SETTLE_OWNED = `${PRELUDE}
local now = now_ms()
if ARGV[4] ~= '' and redis.call('ZSCORE', KEYS[4], ARGV[4]) then return 'delivered' end
local alive = redis.call('EXISTS', KEYS[1]) == 1
local dup = tonumber(ARGV[2])
if dup > 0 then
  local a = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if a and tonumber(a) >= now - dup then return 'duplicate' end
end
local s = redis.call('ZSCORE', KEYS[2], ARGV[1])
-- Neither set holds it, yet its owner lives and did not answer (fenced, or held up): after a
-- Redis that lost its data, the owner alone knows, and will say once it answers again.
if not s then
  if alive and ARGV[3] ~= '1' then return 'pending' end
  return 'none'
end
s = tonumber(s)
if s < 0 then
  if now + s >= tonumber(ARGV[5]) then return 'none' end
  return 'rolled-back'
end
if ARGV[3] == '1' then return 'none' end
if not alive then
  redis.call('ZADD', KEYS[2], string.format('%.0f', -now), ARGV[1])
  return 'rolled-back'
end
return 'pending'`;

/**
 * The scripts called one at a time, as typed calls on one connection
 * (EVALSHA, loaded on first use by ioredis). The per-turn scripts go through
 * a {@link ScriptRunner} instead.
 */
export interface Scripts {
  tag(key: string, tag: string, ttl: number): Promise<unknown>;
  untag(key: string, tag: string): Promise<number>;
  getTags(key: string): Promise<string[]>;
  claim(key: string, tag: string, ttl: number, rivals: readonly string[]): Promise<string | null>;
  settle(ownership: string, tags: string, owner: string, alive: '1' | '0', self: '1' | '0', rollbackTag: string, rollbackTtl: number, committedTag: string, deliverer: string): Promise<string>;
  beat(lease: string, pending: string, answered: string, token: string, leaseTtl: number, pendingTtl: number, duplicateWindow: number, keep: number, rollbackTtl: number): Promise<string | null>;
  settleOwned(lease: string, pending: string, answered: string, forwarded: string, id: string, duplicateWindow: number, self: '1' | '0', member: string, rollbackTtl: number): Promise<string>;
}

const DEFINITIONS = {
  rrxcTag1: { numberOfKeys: 1, lua: TAG },
  rrxcUntag1: { numberOfKeys: 1, lua: UNTAG },
  rrxcGetTags1: { numberOfKeys: 1, lua: GET_TAGS },
  rrxcClaim1: { numberOfKeys: 1, lua: CLAIM },
  rrxcRegister1: { numberOfKeys: 1, lua: REGISTER },
  rrxcDisown3: { numberOfKeys: 2, lua: DISOWN },
  rrxcDeliver2: { numberOfKeys: 2, lua: DELIVER },
  rrxcSettle3: { numberOfKeys: 2, lua: SETTLE },
  rrxcOwn4: { numberOfKeys: 3, lua: OWN },
  rrxcBeat1: { numberOfKeys: 3, lua: BEAT },
  rrxcSettleOwned4: { numberOfKeys: 4, lua: SETTLE_OWNED },
} as const;

type Defined = { [K in keyof typeof DEFINITIONS]: (...args: (string | number)[]) => Promise<never> };

/** Name of one of rrxc's scripts. */
type ScriptName = keyof typeof DEFINITIONS;

const SHAS = Object.fromEntries(Object.entries(DEFINITIONS).map(([name, { lua }]) => [name, createHash('sha1').update(lua).digest('hex')])) as Record<ScriptName, string>;

const UTF8 = { replyEncoding: 'utf8' } as const;

/** Runs one of rrxc's scripts by name; `args` are its keys, then its arguments. */
export type ScriptRunner = (name: ScriptName, args: readonly (string | number)[]) => Promise<unknown>;

/**
 * How to run scripts on `redis` in a write with other commands: on a single
 * node, {@link sendScript}, so that they join a corked write; on a Cluster,
 * which sends each command to the node of its keys' hash slot itself, the
 * commands {@link defineScripts} defined (call it first).
 */
export function scriptRunner(redis: RedisConnection): ScriptRunner {
  if (redis.isCluster) {
    const defined = redis as unknown as Defined;
    return (name, args) => defined[name](...args);
  }
  return (name, args) => sendScript(redis as Redis, name, args);
}

/**
 * Sends one of rrxc's scripts as a plain command (EVALSHA, written at once,
 * never auto-pipelined); a server that does not hold the script (NOSCRIPT: a
 * restarted Redis, or SCRIPT FLUSH) gets it again in full (EVAL, which also
 * caches it there). What `defineCommand`'s functions do, without going
 * through an ioredis `Pipeline` (see `corked`).
 */
function sendScript(redis: Redis, name: ScriptName, args: readonly (string | number)[]): Promise<unknown> {
  const { numberOfKeys, lua } = DEFINITIONS[name];
  const prefix = redis.options.keyPrefix;
  const options = prefix === undefined || prefix === '' ? UTF8 : { replyEncoding: 'utf8' as const, keyPrefix: prefix };
  const evalsha = new Command('evalsha', [SHAS[name], numberOfKeys, ...args], options);
  return (redis.sendCommand(evalsha) as Promise<unknown>).catch((error: unknown) => {
    if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
    return redis.sendCommand(new Command('eval', [lua, numberOfKeys, ...args], options)) as Promise<unknown>;
  });
}

/**
 * Defines rrxc's scripts on `redis` with `defineCommand` (names carry a
 * version suffix, so they cannot clash with the application's) and answers
 * typed wrappers.
 */
export function defineScripts(redis: RedisConnection): Scripts {
  const defined = redis as unknown as Partial<Defined> & Defined;
  for (const [name, definition] of Object.entries(DEFINITIONS)) {
    if (typeof defined[name as keyof Defined] !== 'function') redis.defineCommand(name, definition);
  }
  return {
    tag: (key, tag, ttl) => defined.rrxcTag1(key, tag, ttl),
    untag: (key, tag) => defined.rrxcUntag1(key, tag),
    getTags: (key) => defined.rrxcGetTags1(key),
    claim: (key, tag, ttl, rivals) => defined.rrxcClaim1(key, tag, ttl, ...rivals),
    settle: (ownership, tags, owner, alive, self, rollbackTag, rollbackTtl, committedTag, deliverer) =>
      defined.rrxcSettle3(ownership, tags, owner, alive, self, rollbackTag, rollbackTtl, committedTag, deliverer),
    beat: (lease, pending, answered, token, leaseTtl, pendingTtl, duplicateWindow, keep, rollbackTtl) =>
      defined.rrxcBeat1(lease, pending, answered, token, leaseTtl, pendingTtl, duplicateWindow, keep, rollbackTtl),
    settleOwned: (lease, pending, answered, forwarded, id, duplicateWindow, self, member, rollbackTtl) =>
      defined.rrxcSettleOwned4(lease, pending, answered, forwarded, id, duplicateWindow, self, member, rollbackTtl),
  };
}
