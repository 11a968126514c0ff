// What the webhook tests of node:http, Express and Fastify share: a real
// partner that calls back, raw posts, and the body rules every receiver
// must answer alike.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { expect } from 'vitest';
import type { Controller } from '../../src/index.js';
import { listen } from './servers.js';

/** What the app asks the partner for: where to call back, when, how often, with what. */
export interface PartnerCall {
  readonly callbackUrl: string;
  readonly delayMs: number;
  /** The callback's body, as sent. */
  readonly body: string;
  /** How often the partner posts its callback (partners retry). */
  readonly copies?: number;
  readonly headers?: Record<string, string>;
}

/**
 * A fake partner on loopback: accepts a call at once (202) and posts the
 * callback to its URL later, `copies` times, recording the statuses the
 * webhook answered. `close()` cancels what it has not sent yet.
 */
export async function startPartner(): Promise<{ url: string; answered: number[]; close(): Promise<void> }> {
  const answered: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = await listen((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk));
    request.on('end', () => {
      const call = JSON.parse(text) as PartnerCall;
      response.writeHead(202).end();
      const timer = setTimeout(async () => {
        timers.delete(timer);
        for (let i = 0; i < (call.copies ?? 1); i++) {
          const callback = await fetch(call.callbackUrl, {
            method: 'POST',
            body: call.body,
            headers: { 'content-type': 'application/json', ...call.headers },
          });
          answered.push(callback.status);
        }
      }, call.delayMs);
      timers.add(timer);
    });
  });
  return {
    url: server.url,
    answered,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      await server.close();
    },
  };
}

/** The status and parsed JSON body of an HTTP answer. */
export interface Answered {
  readonly status: number;
  readonly body: unknown;
}

/** Posts raw bytes with exactly `headers` (plus what node:http adds: host, and content-length or chunking). */
export function rawPost(url: string, body: Buffer | string, headers: Record<string, string | string[]>): Promise<Answered> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers }, (res: IncomingMessage) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text === '' ? undefined : (JSON.parse(text) as unknown) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The `maxBodySize` the body-rule cases assume. */
export const CASE_BODY_LIMIT = 64;

/** One callback a receiver must answer as the others do. */
export interface BodyRuleCase {
  readonly name: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | string;
  readonly expected: Answered;
}

const json = { 'content-type': 'application/json' };

/**
 * The body rules, one case each, with what every receiver answers, for a
 * callback whose exchange waits and `maxBodySize` {@link CASE_BODY_LIMIT}.
 */
export const BODY_RULE_CASES: readonly BodyRuleCase[] = [
  { name: 'JSON', headers: json, body: '{"paid":true}', expected: { status: 202, body: { outcome: 'delivered' } } },
  { name: 'JSON with a suffix and a charset', headers: { 'content-type': 'application/merge-patch+json; charset=utf-8' }, body: '{}', expected: { status: 202, body: { outcome: 'delivered' } } },
  { name: 'JSON posted as text/plain (what fetch declares)', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '[1]', expected: { status: 202, body: { outcome: 'delivered' } } },
  { name: 'an empty JSON body', headers: { ...json, 'content-length': '0' }, body: '', expected: { status: 400, body: { outcome: 'invalid', error: 'the callback has an empty body' } } },
  { name: 'no body and no content-type', headers: { 'content-length': '0' }, body: '', expected: { status: 400, body: { outcome: 'invalid', error: 'the callback has an empty body' } } },
  { name: 'text/plain that is not JSON', headers: { 'content-type': 'text/plain' }, body: 'paid!', expected: { status: 400, body: { outcome: 'invalid', error: expect.stringContaining('JSON') } } },
  { name: 'bad JSON', headers: json, body: '{"paid":', expected: { status: 400, body: { outcome: 'invalid', error: expect.stringContaining('JSON') } } },
  { name: 'JSON that is not UTF-8', headers: json, body: Buffer.from([0x22, 0xff, 0x22]), expected: { status: 400, body: { outcome: 'invalid', error: expect.any(String) } } },
  {
    name: 'a form',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'paid=true',
    expected: { status: 415, body: { outcome: 'unsupported-media-type', error: expect.stringContaining('application/x-www-form-urlencoded') } },
  },
  { name: 'a body without content-type', headers: {}, body: '{}', expected: { status: 415, body: { outcome: 'unsupported-media-type', error: expect.stringContaining('`undefined`') } } },
  { name: 'too large, declared', headers: { ...json, 'content-length': '65' }, body: 'x'.repeat(65), expected: { status: 413, body: { outcome: 'too-large', error: expect.stringContaining('64 bytes') } } },
  { name: 'too large, streamed', headers: { ...json, 'transfer-encoding': 'chunked' }, body: Buffer.alloc(10_000, 'x'), expected: { status: 413, body: { outcome: 'too-large', error: expect.stringContaining('64 bytes') } } },
];

/**
 * Posts every case to `${callbacksUrl}/<id>`, each for a request of its own
 * that an open exchange waits for, and answers what came back, by case name.
 */
export async function answerCases(controller: Controller, callbacksUrl: string): Promise<Record<string, Answered>> {
  const answered: Record<string, Answered> = {};
  for (const { name, headers, body } of BODY_RULE_CASES) {
    const exchange = controller.createExchange();
    const { correlationId } = exchange.registerRequest();
    answered[name] = await rawPost(`${callbacksUrl}/${correlationId}`, body, headers);
    exchange.close();
  }
  return answered;
}

/** What every receiver answers to the cases, by case name. */
export const EXPECTED_CASE_ANSWERS: Readonly<Record<string, Answered>> = Object.fromEntries(BODY_RULE_CASES.map(({ name, expected }) => [name, expected]));
