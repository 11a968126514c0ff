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
 * their state lives in keys of the instance's hash slot (hash tag
 * `{<instance>}`, with its lease), written in batches (OWN):
 *   pending set:  member = ID, score = deadline (server ms), or
 *                 -<settled at> once another instance rolled it back
 *   answered buckets: hashes `<answered>:<n>`, one per `width` ms of server
 *                 time (n = floor(time / width)); field = ID, value =
 *                 `<answered at>`, or `<answered at> <from> <seq>` for a
 *                 forward, recorded as delivered before the owner hands it to
 *                 its exchange, in the script that publishes the
 *                 acknowledgement: what a late copy (duplicate window) and a
 *                 forwarder whose acknowledgement was lost ask. A bucket is
 *                 written with one HSET per ID (a sorted set costs a skiplist
 *                 insert and a trim per ID) and dropped whole with UNLINK, off
 *                 Redis' main thread, once older than `keep`; the scripts
 *                 compute the buckets' names, all in the instance's hash slot.
 *   answered layout: `<width> <keep>`, the owner's bucket width and how long
 *                 it keeps a record (ms): how others find its records
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
-- The answered bucket of server time t.
local function bucket(base, t, width)
  return base .. ':' .. string.format('%.0f', math.floor(t / width))
end
-- The record of generated ID id in the answered buckets under base, laid out as the key layout says
-- (written by their owner, whose settings may not be the caller's): its time, and the forward it
-- delivered ('' for none); false when there is none.
local function answered_record(base, layout, id, now)
  local written = redis.call('GET', layout)
  if not written then return false end
  local width, keep = string.match(written, '^(%d+) (%d+)$')
  width, keep = tonumber(width), tonumber(keep)
  for t = now, now - keep - width, -width do
    local record = redis.call('HGET', bucket(base, t, width), id)
    if record then
      local at, by = string.match(record, '^(%d+) ?(.*)$')
      return tonumber(at), by
    end
  end
  return false
end
-- Drops the two answered buckets that just became older than keep: no record in them is asked for any more.
-- A bucket lives keep + 3 widths, so the first of them is still there: UNLINK frees it off Redis' main
-- thread, where its expiry would free it on it (lazyfree-lazy-expire is off by default).
local function unlink_aged(base, now, width, keep)
  local aged = now - keep - 2 * width
  redis.call('UNLINK', bucket(base, aged, width), bucket(base, aged - width, width))
end
-- The acknowledgement "delivered" of forward seq, as a batch holds it (src/redis/_wire.ts: framed(encodeAck(seq, 'delivered'))).
local function delivered_frame(seq)
  local frame = 'a\\n' .. seq .. '\\ndelivered'
  return #frame .. ':' .. frame
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
 * ARGV: owner, forwarder, forward number, rollback tag, the head of the
 * instances' channel names, ms to keep the record after the exchange's
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
local value = 'a|' .. ARGV[1] .. '|' .. ARGV[2] .. ' ' .. ARGV[3]
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
  if ARGV[4] ~= '' and has_tag(KEYS[2], ARGV[4], now) then return 2 end
  redis.call('SET', KEYS[1], value, 'PX', ARGV[6])
end
redis.call('PUBLISH', ARGV[5] .. ARGV[2], delivered_frame(ARGV[3]))
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
 * KEYS: pending set, answered buckets (their common head), answered layout. ARGV: pending-set
 * TTL, duplicate window (0: none), ms to the deadline of requests without
 * one, ms an answered record is kept, answered bucket width ms, rollback TTL
 * ms (a rolled-back mark older than that is gone), the head of the
 * instances' channel names, then four lists, each a count followed by its
 * items: registered (the ms to their deadlines, -1 for none, as one
 * space-separated string; then the IDs), held forwards by forwarder
 * (forwarder, count, then ID and forward number of each: replies the owner
 * holds and hands to their exchange once this script recorded them),
 * answered IDs, unanswered IDs. A registered ID that the same batch also
 * settles gets no pending entry.
 * Answers the answered IDs another instance had already rolled back
 * (conflicts), and the held forwards refused (another instance had rolled
 * the ID back: not delivered, their acknowledgement not sent) as their
 * places in the list (counted across forwarders, in order).
 *
 * An unanswered ID stays in the pending set, marked rolled back
 * (`-<ended at>`): the owner's decision is in Redis in the same step as the
 * ID stops being pending, whether or not its rollback claim is written yet.
 */
const OWN = `${PRELUDE}
local now = now_ms()
local dup = tonumber(ARGV[2])
local far = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local width = tonumber(ARGV[5])
-- A rolled-back mark younger than the rollback TTL refuses a held forward.
local rolled_back_since = tonumber(ARGV[6])
local stamp = string.format('%.0f', now)
-- One command per kind of write for the whole batch: a call from Lua costs more than an ID added to it.
local pending = false
-- The registrations go last: an ID registered and settled in the same batch (its reply came
-- within the turn, or with the next write) never needs its pending entry.
local registered = tonumber(ARGV[8])
local i = 10 + registered
local n
local conflicts = {}
local done = {}
local gone = {}
local records = {}
-- id was answered, with record (false: none); s: its score in the pending set (false: not there).
local function answer(id, s, record)
  if s and tonumber(s) < 0 then
    conflicts[#conflicts + 1] = id
  else
    if s then gone[#gone + 1] = id end
    if record then
      records[#records + 1] = id
      records[#records + 1] = record
    end
  end
  done[id] = true
end
local refused = {}
local place = 0
local forwarders = tonumber(ARGV[i])
i = i + 1
for _ = 1, forwarders do
  local from = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  i = i + 2
  local ids = {}
  for k = 1, count do ids[k] = ARGV[i + 2 * (k - 1)] end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ids))
  local by = stamp .. ' ' .. from .. ' '
  -- The acknowledgements, as a list: concatenated once (a string grown frame by frame is copied every time).
  local frames = {}
  for k = 1, count do
    place = place + 1
    local s = scores[k]
    local seq = ARGV[i + 1]
    if s and tonumber(s) < 0 and now + tonumber(s) < rolled_back_since then
      refused[#refused + 1] = place
    else
      answer(ARGV[i], s, by .. seq)
      frames[#frames + 1] = delivered_frame(seq)
    end
    i = i + 2
  end
  if #frames > 0 then redis.call('PUBLISH', ARGV[7] .. from, table.concat(frames)) end
end
n = tonumber(ARGV[i])
i = i + 1
if n > 0 then
  local ids = {}
  for k = 1, n do
    if not done[ARGV[i]] then ids[#ids + 1] = ARGV[i] end
    i = i + 1
  end
  if #ids > 0 then
    local scores = redis.call('ZMSCORE', KEYS[1], unpack(ids))
    for k = 1, #ids do answer(ids[k], scores[k], dup > 0 and stamp) end
  end
end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
n = tonumber(ARGV[i])
i = i + 1
if n > 0 then
  local marks = {}
  local mark = string.format('%.0f', -now)
  for k = 1, n do
    marks[#marks + 1] = mark
    marks[#marks + 1] = ARGV[i]
    done[ARGV[i]] = true
    i = i + 1
  end
  redis.call('ZADD', KEYS[1], unpack(marks))
  pending = true
end
if registered > 0 then
  local added = {}
  i = 10
  for remaining in string.gmatch(ARGV[9], '%S+') do
    if not done[ARGV[i]] then
      remaining = tonumber(remaining)
      if remaining < 0 then remaining = far end
      added[#added + 1] = string.format('%.0f', now + remaining)
      added[#added + 1] = ARGV[i]
    end
    i = i + 1
  end
  if #added > 0 then
    redis.call('ZADD', KEYS[1], unpack(added))
    pending = true
  end
end
if pending then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if #records > 0 then
  local answered = bucket(KEYS[2], now, width)
  redis.call('HSET', answered, unpack(records))
  -- A new bucket (no TTL yet): given one, the layout others read is written, and the buckets that aged out are dropped.
  if redis.call('PTTL', answered) < 0 then
    local ttl = string.format('%.0f', keep + 3 * width)
    redis.call('PEXPIRE', answered, ttl)
    redis.call('SET', KEYS[3], ARGV[5] .. ' ' .. ARGV[4], 'PX', ttl)
    unlink_aged(KEYS[2], now, width, keep)
  end
end
return {conflicts, refused}`;

/**
 * Renews an instance's lease and trims what it holds about its IDs. KEYS:
 * lease, pending set, answered buckets (their head). ARGV: token, lease ms,
 * pending-set TTL (0: not started, nothing written yet), ms an answered
 * record is kept, answered bucket width ms, ms a pending entry is kept past
 * its deadline, rollback TTL. Answers what the lease held before (false:
 * nothing).
 */
const BEAT = `${PRELUDE}
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', KEYS[2], 0, string.format('%.0f', now - tonumber(ARGV[6])))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. string.format('%.0f', tonumber(ARGV[7]) - now), '(0')
  redis.call('PEXPIRE', KEYS[2], ttl)
  -- A quiet instance writes no batch that would drop its aged buckets.
  unlink_aged(KEYS[3], now, tonumber(ARGV[5]), tonumber(ARGV[4]))
end
return old`;

/**
 * A non-owner decides a generated ID its owner did not answer for; the
 * owner itself asks which forward it delivered. KEYS: owner's lease,
 * pending set, answered buckets (their head), answered layout. ARGV: ID,
 * duplicate window, 1 when the owner is this very instance, the forward
 * asking (`<from> <seq>`; empty: none), rollback TTL ms (a rolled-back mark
 * older than that is gone).
 * Answers the outcome (`delivered` when that very forward was delivered),
 * 'pending' when the owner may still deliver (or may have: unknown), or
 * 'none' when nothing the owner wrote holds the ID and the owner is gone,
 * or is this instance (the tags decide); a live owner that did not answer
 * for an ID it holds no record of (lost with Redis' data, or trimmed) is
 * 'pending' too: unknown. A `rolled-back` is the owner's set's decision;
 * the caller then claims the rollback tag against the committed one.
 *
 * While the owner's lease lives, its pending IDs are never rolled back
 * here, whatever their deadline: the owner ends its exchanges itself, and
 * one that stalled may have delivered. A forwarded reply is recorded as
 * answered before its owner hands it over, so a dead owner's pending ID was
 * not delivered as a forward.
 */
const SETTLE_OWNED = `${PRELUDE}
local now = now_ms()
local at, by = answered_record(KEYS[3], KEYS[4], ARGV[1], now)
if at then
  if ARGV[4] ~= '' and by == ARGV[4] then return 'delivered' end
  local dup = tonumber(ARGV[2])
  if dup > 0 and at >= now - dup then return 'duplicate' end
end
local alive = redis.call('EXISTS', KEYS[1]) == 1
local s = redis.call('ZSCORE', KEYS[2], ARGV[1])
-- Nothing holds it, yet its owner lives and did not answer (fenced, or held up): after a
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
  beat(lease: string, pending: string, answered: string, token: string, leaseTtl: number, pendingTtl: number, answeredKeep: number, bucketWidth: number, keep: number, rollbackTtl: number): Promise<string | null>;
  settleOwned(lease: string, pending: string, answered: string, layout: string, id: string, duplicateWindow: number, self: '1' | '0', deliverer: string, rollbackTtl: number): Promise<string>;
}

const DEFINITIONS = {
  rrxcTag1: { numberOfKeys: 1, lua: TAG },
  rrxcUntag1: { numberOfKeys: 1, lua: UNTAG },
  rrxcGetTags1: { numberOfKeys: 1, lua: GET_TAGS },
  rrxcClaim1: { numberOfKeys: 1, lua: CLAIM },
  rrxcRegister1: { numberOfKeys: 1, lua: REGISTER },
  rrxcDisown3: { numberOfKeys: 2, lua: DISOWN },
  rrxcDeliver3: { numberOfKeys: 2, lua: DELIVER },
  rrxcSettle3: { numberOfKeys: 2, lua: SETTLE },
  rrxcOwn5: { numberOfKeys: 3, lua: OWN },
  rrxcBeat2: { numberOfKeys: 3, lua: BEAT },
  rrxcSettleOwned5: { numberOfKeys: 4, lua: SETTLE_OWNED },
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
    beat: (lease, pending, answered, token, leaseTtl, pendingTtl, answeredKeep, bucketWidth, keep, rollbackTtl) =>
      defined.rrxcBeat2(lease, pending, answered, token, leaseTtl, pendingTtl, answeredKeep, bucketWidth, keep, rollbackTtl),
    settleOwned: (lease, pending, answered, layout, id, duplicateWindow, self, deliverer, rollbackTtl) =>
      defined.rrxcSettleOwned5(lease, pending, answered, layout, id, duplicateWindow, self, deliverer, rollbackTtl),
  };
}
