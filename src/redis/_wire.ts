// How instances talk: the text protocol of forwarded replies and their
// acknowledgements, and what the forwarding path keeps per forward and per
// event-loop turn to speak it.
//
// Every instance listens on its own pub/sub channel (`<prefix>in:<instanceId>`).
// A message on it is a batch of frames, each written `<length>:<frame>`
// (length in UTF-16 code units), and a frame is one of:
//
//   f\n<from>\n<seq>\n<overwrite: 0 or 1>\n<id length>\n<id><payload>
//       a reply forwarded to its owner by instance <from>, as its forward
//       number <seq>; <payload> is the message as the codec wrote it
//   a\n<seq>\n<answer>
//       the owner's answer to forward <seq>: an outcome (`delivered`, …),
//       `gone` (closed or fenced: it will not decide), or `error:<why>`
//       (`error:codec: …` when it could not decode the payload)
//
// A forward that is sent again keeps its <seq>, and its owner answers the
// repeat from memory: pub/sub may lose a message either way.
import { Command, type Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import { describeCause } from '../_describe.js';
import type { ResponseOutcome } from '../types.js';
import { TimerLane, type DeadlineTarget } from '../timing/timer-lane.js';
import { corked, type Bounds, type RedisConnection } from './_connection.js';

/** A reply forwarded to the instance that owns its exchange. */
interface ForwardFrame {
  readonly kind: 'forward';
  /** The instance that forwards it, and awaits the answer on its own channel. */
  readonly from: string;
  /** The forward's number at `from`: the same for every copy sent. */
  readonly seq: number;
  readonly overwrite: boolean;
  readonly id: string;
  /** The message, encoded by the codec. */
  readonly payload: string;
}

/** The owner's answer to a forward. */
interface AckFrame {
  readonly kind: 'ack';
  /** The number of the forward answered. */
  readonly seq: number;
  /** An outcome, {@link GONE}, or {@link ERROR} followed by what failed. */
  readonly answer: string;
}

/** What a batch holds. */
export type Frame = ForwardFrame | AckFrame;

/** The answer of an owner that will not decide: it is closed, or fenced. */
export const GONE = 'gone';
/** Heads the answer of an owner whose own routing failed. */
export const ERROR = 'error:';
/** What a wait settles with when `retryInterval` passed without an answer: send again. */
export const RETRY = Symbol('retry');
/** What a wait settles with when nobody received the message it was sent in. */
export const NOBODY = Symbol('nobody listens');
/** What one send of a forward comes to: the owner's answer, {@link RETRY}, {@link NOBODY}, or the PUBLISH failure. */
type Attempt = string | typeof RETRY | typeof NOBODY | { readonly error: unknown };

/** Whether an answer is an outcome, to be returned as it is. */
export function isOutcome(answer: string): answer is ResponseOutcome {
  return OUTCOMES.has(answer);
}

/** The forward frame of a reply. */
export function encodeForward(from: string, seq: number, overwrite: boolean, id: string, payload: string): string {
  return `f\n${from}\n${seq}\n${overwrite ? 1 : 0}\n${id.length}\n${id}${payload}`;
}

/** The acknowledgement frame of an answer. */
export function encodeAck(seq: number, answer: string): string {
  return `a\n${seq}\n${answer}`;
}

/** A frame as it stands in a batch: batches are frames so written, one after the other. */
export function framed(frame: string): string {
  return `${frame.length}:${frame}`;
}

/**
 * Calls `each` with every frame of a batch, in order. A frame that is not
 * one is passed over; at a length that does not fit, the rest of the batch
 * is, since no frame in it can be found any more.
 */
export function parseBatch(batch: string, each: (frame: Frame) => void): void {
  for (let at = 0; at < batch.length; ) {
    const colon = batch.indexOf(':', at);
    const length = colon < 0 ? -1 : digits(batch, at, colon);
    const end = colon + 1 + length;
    if (length < 0 || end > batch.length) return;
    const frame = parseFrame(batch.slice(colon + 1, end));
    if (frame !== undefined) each(frame);
    at = end;
  }
}

/** The frame `raw` holds; `undefined` when it holds none. */
export function parseFrame(raw: string): Frame | undefined {
  if (raw.charCodeAt(1) !== NEWLINE) return undefined;
  if (raw[0] === 'a') {
    const seqEnd = raw.indexOf('\n', 2);
    const seq = seqEnd < 0 ? -1 : digits(raw, 2, seqEnd);
    return seq < 0 ? undefined : { kind: 'ack', seq, answer: raw.slice(seqEnd + 1) };
  }
  if (raw[0] !== 'f') return undefined;
  const fromEnd = raw.indexOf('\n', 2);
  const seqEnd = fromEnd < 0 ? -1 : raw.indexOf('\n', fromEnd + 1);
  // The overwrite flag is one character.
  const flagEnd = seqEnd < 0 || raw.charCodeAt(seqEnd + 2) !== NEWLINE ? -1 : seqEnd + 2;
  const lengthEnd = flagEnd < 0 ? -1 : raw.indexOf('\n', flagEnd + 1);
  if (lengthEnd < 0 || fromEnd === 2) return undefined;
  const seq = digits(raw, fromEnd + 1, seqEnd);
  const flag = raw[seqEnd + 1];
  const length = digits(raw, flagEnd + 1, lengthEnd);
  const idEnd = lengthEnd + 1 + length;
  if (seq < 0 || length < 0 || idEnd > raw.length || (flag !== '0' && flag !== '1')) return undefined;
  return { kind: 'forward', from: raw.slice(2, fromEnd), seq, overwrite: flag === '1', id: raw.slice(lengthEnd + 1, idEnd), payload: raw.slice(idEnd) };
}

/**
 * Forwards waiting for their owner's answer, by sequence number, and pauses
 * between sends, on one timer: every wait lasts `retryInterval`. The hot
 * path of forwarding, so no timer and no `Error` per forward.
 */
export class AckWaits {
  readonly #lane: TimerLane<Wait>;

  /**
   * @param retryInterval - How long every wait lasts.
   * @param clock - Where time is read and the timer scheduled.
   */
  constructor(retryInterval: number, clock: Clock) {
    this.#lane = new TimerLane(retryInterval, clock);
  }

  /**
   * Waits for the answer to forward `seq`: call it before sending, since an
   * answer (or news that nobody received the send) may come at any time after.
   */
  wait(seq: number): Promise<Attempt> {
    return new Promise((settle) => this.#add(settle, seq));
  }

  /** Waits `retryInterval`, for an answer nobody sends: {@link RETRY}, or {@link GONE} once closed. */
  pause(): Promise<Attempt> {
    return new Promise((settle) => this.#add(settle));
  }

  /** Settles the wait of forward `seq` with `attempt`, if it still waits. */
  answer(seq: number, attempt: Attempt): void {
    this.#lane.take(seq)?.settle(attempt);
  }

  /** Drops the wait of forward `seq`, if any: the forward is done. */
  forget(seq: number): void {
    this.#lane.take(seq);
  }

  /** Settles every wait with {@link GONE}. */
  close(): void {
    for (const wait of this.#lane.clear()) wait.settle(GONE);
  }

  #add(settle: (attempt: Attempt) => void, seq?: number): void {
    this.#lane.add(new Wait(this.#lane.clock.now() + this.#lane.ms, settle), seq);
  }
}

/**
 * The answers this instance gave to forwarded replies, by sender and
 * sequence number, so that a forward sent again (its acknowledgement was
 * lost) gets the first answer rather than being routed twice. Two
 * generations, each as long as a sender resends (`keep`: forwardTimeout
 * plus one interval), so that an answer is kept that long at least.
 */
export class AnswerLog {
  // Not the core's DuplicateWindow, though both keep two generations: that one keeps fingerprints, no references, bounded by count; this one must keep pending promises.
  #current = new Map<string, Answers>();
  #previous = new Map<string, Answers>();
  #since: number;
  readonly #keep: number;
  readonly #clock: Clock;

  /**
   * @param keep - Milliseconds an answer is kept at least.
   * @param clock - Where time is read.
   */
  constructor(keep: number, clock: Clock) {
    this.#keep = keep;
    this.#clock = clock;
    this.#since = clock.now();
  }

  /**
   * Answers forward `seq` of instance `from`: a repeat with the first answer
   * it got (once known), anything else with what `route` resolves to, which
   * is then logged. `reply` gets the answer as an acknowledgement payload.
   */
  respond(from: string, seq: number, route: () => Promise<string>, reply: (answer: string) => void): void {
    const answers = this.#answersTo(from);
    const known = answers.get(seq) ?? this.#previous.get(from)?.get(seq);
    if (known === undefined) {
      const answer = route();
      answers.set(seq, answer);
      answer.then(
        (outcome) => {
          // Settled answers are kept as small integers: nothing for the garbage collector to trace.
          answers.set(seq, ANSWER_CODES.get(outcome) ?? outcome);
          reply(outcome);
        },
        (error: unknown) => {
          const failed = failure(error);
          answers.set(seq, failed);
          reply(failed);
        },
      );
    } else if (typeof known === 'object') {
      void known.then(reply, (error: unknown) => reply(failure(error)));
    } else {
      reply(typeof known === 'number' ? ANSWERS[known]! : known);
    }
  }

  /** The answers to `from` in the current generation, which becomes the previous one once it is `keep` old. */
  #answersTo(from: string): Answers {
    const now = this.#clock.now();
    if (now - this.#since > this.#keep) {
      this.#previous = this.#current;
      this.#current = new Map();
      this.#since = now;
    }
    let answers = this.#current.get(from);
    if (answers === undefined) this.#current.set(from, (answers = new Map()));
    return answers;
  }
}

/**
 * What this instance writes to Redis in one event-loop turn: its messages,
 * one PUBLISH per channel (and one message to parse on the other side) per
 * turn rather than per reply, and whatever else joins the turn's write
 * (`alsoWrite`: the ownership batches). Each command is bounded by
 * `commandTimeout`; the forwards a message carried learn when nobody
 * received it, or when PUBLISH failed.
 */
export class Outbox {
  /**
   * A new map every turn, which dies young (a long-lived one, cleared every
   * turn, would allocate its tables in old space, where they keep what they
   * held alive until the next full collection).
   */
  #messages = new Map<string, Outgoing>();
  #scheduled = false;
  readonly #redis: RedisConnection;
  readonly #commands: Bounds;
  readonly #waits: AckWaits;
  readonly #alsoWrite: () => void;

  /**
   * @param redis - The command connection.
   * @param commands - Bounds by `commandTimeout`.
   * @param waits - Where the forwards learn what became of their message.
   * @param alsoWrite - Sends the rest of the turn's commands, in the same write.
   */
  constructor(redis: RedisConnection, commands: Bounds, waits: AckWaits, alsoWrite: () => void) {
    this.#redis = redis;
    this.#commands = commands;
    this.#waits = waits;
    this.#alsoWrite = alsoWrite;
  }

  /** Sends `frame` on `channel` with this turn's write; `seq`: the forward it is. */
  send(channel: string, frame: string, seq?: number): void {
    let outgoing = this.#messages.get(channel);
    if (outgoing === undefined) {
      outgoing = { frames: '', forwards: [] };
      this.#messages.set(channel, outgoing);
      this.schedule();
    }
    outgoing.frames += framed(frame);
    if (seq !== undefined) outgoing.forwards.push(seq);
  }

  /** Makes sure this turn ends with a write. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Not on the injected clock, and rightly: this waits for no time but for
    // the end of this turn of the event loop, which batches what the turn
    // sends. A test clock that only moves when told must not hold writes back.
    setImmediate(this.flush);
  }

  /**
   * Writes this turn's commands. On a single node they go out in one write,
   * sent now (through ioredis' auto-pipelining each would wait one more
   * event-loop turn), as plain commands on a corked socket rather than in
   * an ioredis `Pipeline`: a pipeline per turn, with all it reaches, would
   * outlive every scavenge (see `corked`). On a Cluster their keys are in
   * different hash slots: one command each, which the Cluster routes.
   */
  readonly flush = (): void => {
    this.#scheduled = false;
    const messages = this.#messages;
    if (messages.size > 0) this.#messages = new Map();
    corked(this.#redis, () => {
      for (const [channel, outgoing] of messages) {
        this.#commands.command(this.#publish(channel, outgoing.frames), 'PUBLISH').then(
          (receivers) => this.#published(outgoing, receivers),
          (error: unknown) => this.#published(outgoing, undefined, error),
        );
      }
      this.#alsoWrite();
    });
  };

  /** PUBLISH: a plain command on a single node, so that it joins the corked write; on a Cluster, through the Cluster. */
  #publish(channel: string, message: string): Promise<number> {
    if (this.#redis.isCluster) return this.#redis.publish(channel, message);
    return (this.#redis as Redis).sendCommand(new Command('publish', [channel, message])) as Promise<number>;
  }

  /** What became of one PUBLISH, told to the forwards it carried. */
  #published(outgoing: Outgoing, receivers: number | undefined, error?: unknown): void {
    if (outgoing.forwards.length === 0 || (error === undefined && receivers !== 0)) return;
    const attempt: Attempt = error === undefined ? NOBODY : { error };
    for (const seq of outgoing.forwards) this.#waits.answer(seq, attempt);
  }
}

/** A forward waiting for its answer, or a pause between sends; {@link RETRY} once its time is up. */
class Wait implements DeadlineTarget {
  constructor(
    readonly deadline: number,
    readonly settle: (attempt: Attempt) => void,
  ) {}

  onDeadline(): void {
    this.settle(RETRY);
  }
}

/** The messages for one channel in this event-loop turn. */
interface Outgoing {
  frames: string;
  /** Sequence numbers of the forwards among them. */
  readonly forwards: number[];
}

/** The answers to one sender, by sequence number: pending, an {@link ANSWERS} index, or an `error:` string. */
type Answers = Map<number, Promise<string> | number | string>;

const OUTCOMES = new Set<string>(['delivered', 'duplicate', 'overwritten', 'rolled-back', 'committed', 'unmatched'] satisfies ResponseOutcome[]);
/** Answers that are kept as their index. */
const ANSWERS = [...OUTCOMES, GONE];
const ANSWER_CODES = new Map<string, number>(ANSWERS.map((answer, i) => [answer, i]));

const NEWLINE = 10;

/** The answer of an owner whose routing threw. */
function failure(error: unknown): string {
  return `${ERROR}${describeCause(error)}`;
}

/** The safe integer the decimal digits `text[from, to)` write; -1 unless they are 1 to 16 digits, and nothing else. */
function digits(text: string, from: number, to: number): number {
  if (to <= from || to - from > 16) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = 10 * value + digit;
  }
  return value > Number.MAX_SAFE_INTEGER ? -1 : value;
}
