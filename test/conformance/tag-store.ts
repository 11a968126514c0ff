import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TagStore } from '../../src/index.js';

/** A fresh store for one test of {@link describeTagStore}, and what the suite needs around it. */
export interface TagStoreFixture {
  readonly store: TagStore;
  /** Runs after the test, besides `store.close()`. */
  readonly cleanup?: () => Promise<void>;
  /**
   * Lets `ms` of the store's time pass, for a store on an injected clock (a
   * `ManualClock`). Without it the suite sleeps in real time, as it must for
   * a store whose TTLs another process keeps (Redis).
   */
  readonly advance?: (ms: number) => void;
}

/**
 * The TagStore contract, as one suite every implementation must pass:
 * `describeTagStore('MemoryTagStore', async () => ({ store: new MemoryTagStore() }))`.
 * The factory is called before each test with a fresh store.
 */
export function describeTagStore(name: string, factory: () => Promise<TagStoreFixture>): void {
  describe(`TagStore conformance: ${name}`, () => {
    let store: TagStore;
    let cleanup: (() => Promise<void>) | undefined;
    let advance: ((ms: number) => void) | undefined;

    beforeEach(async () => {
      ({ store, cleanup, advance } = await factory());
    });

    /** Lets `ms` pass in the store's time: on its clock if it has one, else in real time. */
    const pass = async (ms: number): Promise<void> => (advance === undefined ? sleep(ms) : advance(ms));

    afterEach(async () => {
      await store.close?.();
      await cleanup?.();
    });

    it('answers no tags for an ID never tagged', async () => {
      expect(await store.getTags('never-tagged')).toEqual([]);
    });

    it('answers every live tag of an ID, and only that ID', async () => {
      await store.tag('a', 'rollback', 60_000);
      await store.tag('a', 'audit', 60_000);
      await store.tag('b', 'other', 60_000);
      expect([...(await store.getTags('a'))].sort()).toEqual(['audit', 'rollback']);
      expect(await store.getTags('b')).toEqual(['other']);
    });

    it('forgets a tag once its TTL has passed, keeping the others', async () => {
      await store.tag('a', 'short', 40);
      await store.tag('a', 'long', 60_000);
      await pass(120);
      expect(await store.getTags('a')).toEqual(['long']);
    });

    it('keeps a tag with TTL 0 (no expiry)', async () => {
      await store.tag('a', 'forever', 0);
      await pass(60);
      expect(await store.getTags('a')).toEqual(['forever']);
    });

    it('replaces the TTL when a tag is put again, shorter or longer', async () => {
      await store.tag('longer', 't', 40);
      await store.tag('longer', 't', 60_000);
      await store.tag('shorter', 't', 60_000);
      await store.tag('shorter', 't', 40);
      await pass(120);
      expect(await store.getTags('longer')).toEqual(['t']);
      expect(await store.getTags('shorter')).toEqual([]);
    });

    it('answers true when untag removed a live tag, false when there was none', async () => {
      await store.tag('a', 'rollback', 60_000);
      expect(await store.untag('a', 'rollback')).toBe(true);
      expect(await store.untag('a', 'rollback')).toBe(false);
      expect(await store.untag('never-tagged', 'rollback')).toBe(false);
      expect(await store.getTags('a')).toEqual([]);
    });

    it('answers false when untagging a tag that already expired', async () => {
      await store.tag('a', 'short', 30);
      await pass(100);
      expect(await store.untag('a', 'short')).toBe(false);
    });

    it('keeps the other tags of an ID when one is untagged', async () => {
      await store.tag('a', 'x', 60_000);
      await store.tag('a', 'y', 60_000);
      await store.untag('a', 'x');
      expect(await store.getTags('a')).toEqual(['y']);
    });

    it('keeps IDs and tags with unusual characters apart', async () => {
      const ids = ['__proto__', 'constructor', 'a{b}c', '{a}', 'a b', 'ünï-😀', 'a:b', 'x'.repeat(256)];
      for (const [i, id] of ids.entries()) await store.tag(id, `t${i}`, 60_000);
      for (const [i, id] of ids.entries()) expect(await store.getTags(id)).toEqual([`t${i}`]);
      await store.tag('plain', '__proto__', 60_000);
      expect(await store.getTags('plain')).toEqual(['__proto__']);
    });

    describe('claim: the one decision on an ID', () => {
      it('adds the tag to an ID that carries none of the claimed tags, and answers undefined', async () => {
        await store.tag('a', 'audit', 60_000);
        expect(await store.claim('a', 'rollback', 60_000, ['committed'])).toBeUndefined();
        expect([...(await store.getTags('a'))].sort()).toEqual(['audit', 'rollback']);
      });

      it('answers the rival that holds the ID, and adds nothing', async () => {
        await store.tag('a', 'committed', 60_000);
        expect(await store.claim('a', 'rollback', 60_000, ['committed'])).toBe('committed');
        expect(await store.getTags('a')).toEqual(['committed']);
      });

      it('answers the claimed tag itself when an earlier claim took it', async () => {
        expect(await store.claim('a', 'compensated', 60_000, [])).toBeUndefined();
        expect(await store.claim('a', 'compensated', 60_000, [])).toBe('compensated');
      });

      it('ignores an expired rival, and its own claim expires with its TTL', async () => {
        await store.tag('a', 'committed', 30);
        await pass(100);
        expect(await store.claim('a', 'rollback', 40, ['committed'])).toBeUndefined();
        await pass(120);
        expect(await store.getTags('a')).toEqual([]);
        expect(await store.claim('a', 'committed', 60_000, ['rollback'])).toBeUndefined();
      });

      it('can be claimed again once untagged', async () => {
        await store.claim('a', 'rollback', 60_000, ['committed']);
        expect(await store.untag('a', 'rollback')).toBe(true);
        expect(await store.claim('a', 'committed', 60_000, ['rollback'])).toBeUndefined();
      });

      it('lets exactly one of many concurrent claims on one ID win, and tells the others which', async () => {
        const tags = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 'rollback' : 'committed'));
        const answers = await Promise.all(tags.map((tag) => store.claim('race', tag, 60_000, tag === 'rollback' ? ['committed'] : ['rollback'])));
        const winners = answers.flatMap((answer, i) => (answer === undefined ? [tags[i]!] : []));
        expect(winners).toHaveLength(1);
        expect(answers.filter((answer) => answer !== undefined)).toEqual(Array(tags.length - 1).fill(winners[0]));
        expect(await store.getTags('race')).toEqual(winners);
      });
    });
  });
}
