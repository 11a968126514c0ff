import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AckWaits, AnswerLog, encodeAck, encodeForward, framed, GONE, parseBatch, parseFrame, RETRY, type Frame } from '../../src/redis/_wire.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** Every frame of a batch, as `parseBatch` hands them out. */
function framesOf(batch: string): Frame[] {
  const frames: Frame[] = [];
  parseBatch(batch, (frame) => frames.push(frame));
  return frames;
}

const forwardFrame = fc.record({
  kind: fc.constant('forward' as const),
  from: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  overwrite: fc.boolean(),
  // IDs and payloads hold anything, the separators included.
  id: fc.string({ minLength: 1, unit: 'binary' }),
  payload: fc.string({ unit: 'binary' }),
});
const ackFrame = fc.record({ kind: fc.constant('ack' as const), seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }), answer: fc.string({ unit: 'binary' }) });

const encode = (frame: Frame): string =>
  frame.kind === 'ack' ? encodeAck(frame.seq, frame.answer) : encodeForward(frame.from, frame.seq, frame.overwrite, frame.id, frame.payload);

describe('the wire format of the Redis backplane', () => {
  it('parses back every forward and acknowledgement it encodes', () => {
    fc.assert(
      fc.property(fc.oneof(forwardFrame, ackFrame), (frame) => {
        expect(parseFrame(encode(frame))).toEqual(frame);
      }),
    );
  });

  it('parses back a batch of frames, in order, whatever they hold', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(forwardFrame, ackFrame), { maxLength: 20 }), (frames) => {
        expect(framesOf(frames.map((frame) => framed(encode(frame))).join(''))).toEqual(frames);
      }),
    );
  });

  it('writes frames as the other instances read them', () => {
    expect(encodeForward('b7', 7, false, 'a~1', '"once"')).toBe('f\nb7\n7\n0\n3\na~1"once"');
    expect(encodeForward('b7', 8, true, 'x', '')).toBe('f\nb7\n8\n1\n1\nx');
    expect(encodeAck(7, 'delivered')).toBe('a\n7\ndelivered');
    expect(encodeAck(9, 'error:codec: Unexpected token')).toBe('a\n9\nerror:codec: Unexpected token');
    expect(framed('a\n7\ndelivered')).toBe('13:a\n7\ndelivered');
  });

  it('keeps an answer that spans lines whole', () => {
    expect(parseFrame('a\n3\nerror:store failed\nat line 2')).toEqual({ kind: 'ack', seq: 3, answer: 'error:store failed\nat line 2' });
  });

  it.each([
    ['an empty frame', ''],
    ['an unknown kind', 'x\n1\ndelivered'],
    ['a kind without its separator', 'a1\ndelivered'],
    ['an acknowledgement without a sequence number', 'a\n\ndelivered'],
    ['an acknowledgement with a signed sequence number', 'a\n-1\ndelivered'],
    ['an acknowledgement that ends after its number', 'a\n12'],
    ['a forward without a sender', 'f\n\n1\n0\n1\nx'],
    ['a forward whose sequence number is not one', 'f\nb\n1e3\n0\n1\nx'],
    ['a forward whose flag is neither 0 nor 1', 'f\nb\n1\n2\n1\nx'],
    ['a forward whose flag is longer', 'f\nb\n1\n01\n1\nx'],
    ['a forward whose ID is longer than the frame', 'f\nb\n1\n0\n9\nx'],
    ['a forward cut short', 'f\nb\n1\n0'],
  ])('takes %s for no frame', (_, raw) => {
    expect(parseFrame(raw)).toBeUndefined();
  });

  it('passes over a malformed frame and reads the ones after it', () => {
    const ack = 'a\n5\nduplicate';
    expect(framesOf(`${framed('nonsense')}${framed(ack)}`)).toEqual([{ kind: 'ack', seq: 5, answer: 'duplicate' }]);
  });

  it('stops at a length that does not frame the rest of the batch, keeping what came before', () => {
    const ack = framed('a\n5\nduplicate');
    expect(framesOf(`${ack}99:a\n6\ndelivered`)).toEqual([{ kind: 'ack', seq: 5, answer: 'duplicate' }]);
    expect(framesOf(`${ack}x:a\n6\ndelivered`)).toHaveLength(1);
    expect(framesOf(`${ack}a\n6\ndelivered`)).toHaveLength(1);
  });
});

describe('the answer log', () => {
  it('routes a forward once, and answers every repeat with the first answer, before and after it is known', async () => {
    const log = new AnswerLog(1_000, new ManualClock());
    let routed = 0;
    let settle!: (outcome: string) => void;
    const route = (): Promise<string> => {
      routed++;
      return new Promise((resolve) => (settle = resolve));
    };
    const replies: string[] = [];
    log.respond('b', 1, route, (answer) => replies.push(answer));
    log.respond('b', 1, route, (answer) => replies.push(answer));
    settle('delivered');
    await Promise.resolve();
    log.respond('b', 1, route, (answer) => replies.push(answer));
    await Promise.resolve();
    expect(routed).toBe(1);
    expect(replies).toEqual(['delivered', 'delivered', 'delivered']);
  });

  it('answers a forward whose routing failed with the failure, every time', async () => {
    const log = new AnswerLog(1_000, new ManualClock());
    const replies: string[] = [];
    log.respond('b', 2, () => Promise.reject(new Error('store down')), (answer) => replies.push(answer));
    await new Promise((resolve) => setImmediate(resolve));
    log.respond('b', 2, () => Promise.resolve('delivered'), (answer) => replies.push(answer));
    expect(replies).toEqual(['error:store down', 'error:store down']);
  });

  it('tells senders and their sequence numbers apart', async () => {
    const log = new AnswerLog(1_000, new ManualClock());
    const replies: string[] = [];
    log.respond('b', 1, () => Promise.resolve('delivered'), (answer) => replies.push(`b1 ${answer}`));
    log.respond('c', 1, () => Promise.resolve('unmatched'), (answer) => replies.push(`c1 ${answer}`));
    log.respond('b', 2, () => Promise.resolve('duplicate'), (answer) => replies.push(`b2 ${answer}`));
    await new Promise((resolve) => setImmediate(resolve));
    expect(replies.sort()).toEqual(['b1 delivered', 'b2 duplicate', 'c1 unmatched']);
  });

  it('keeps an answer for at least as long as it was told, and forgets it within twice that', async () => {
    const clock = new ManualClock();
    const log = new AnswerLog(1_000, clock);
    let routed = 0;
    const route = (): Promise<string> => Promise.resolve(`outcome ${++routed}`);
    const ignore = (): void => undefined;
    log.respond('b', 1, route, ignore);
    clock.advance(1_000);
    log.respond('b', 1, route, ignore);
    clock.advance(1);
    log.respond('b', 1, route, ignore);
    expect(routed).toBe(1);
    clock.advance(1_001);
    log.respond('b', 9, route, ignore);
    log.respond('b', 1, route, ignore);
    expect(routed).toBe(3);
  });
});

describe('the acknowledgement waits', () => {
  it('settle with the answer to their forward, or to send again once retryInterval passed, on one timer', async () => {
    const clock = new ManualClock();
    const waits = new AckWaits(250, clock);
    const first = waits.wait(1);
    const second = waits.wait(2);
    expect(clock.pending).toBe(1);
    waits.answer(1, 'delivered');
    waits.answer(1, 'duplicate');
    clock.advance(250);
    expect(await first).toBe('delivered');
    expect(await second).toBe(RETRY);
    expect(clock.pending).toBe(0);
  });

  it('settle a forward still waiting, or pausing between sends, as gone when closed', async () => {
    const clock = new ManualClock();
    const waits = new AckWaits(250, clock);
    const waiting = waits.wait(1);
    const pausing = waits.pause();
    waits.close();
    expect([await waiting, await pausing]).toEqual([GONE, GONE]);
    expect(clock.pending).toBe(0);
  });

  it('forget a forward that is done: a late answer finds nothing to settle', async () => {
    const clock = new ManualClock();
    const waits = new AckWaits(250, clock);
    const forgotten = waits.wait(1);
    waits.forget(1);
    waits.answer(1, 'delivered');
    expect(clock.pending).toBe(0);
    const settled = await Promise.race([forgotten, Promise.resolve('pending')]);
    expect(settled).toBe('pending');
  });
});
