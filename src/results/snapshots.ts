import type { ExchangeResult, ExchangeStatus, RequestResponse } from '../types.js';

// Results and their entries are plain objects — prototype `Object.prototype`,
// own enumerable data properties — built by constructor functions rather
// than written as literals. V8 tracks every object literal's allocation
// site: while it decides whether to pretenure a site, each object carries
// a memento, and a site whose objects survive scavenges (a burst of replies
// keeps its results alive until the callers resume) is pretenured into the
// old generation, where they then die. Objects made by `new` are neither.
// Measured again on Node 20.20 (2026-12-03), the same build with these
// three made object literals, alternating runs of
// `bench/profile.ts rrxc routing 10000` (10 000 open, 20 000 replies a
// round): 2.83–2.94 M replies/s with the constructors, 1.85–1.96 M with
// literals. The isolated micro-benchmark in bench/structures.ts
// ("snapshots") does not reproduce the pretenuring and reads 1.02×: it is
// the routing run that keeps this file.

type Writable<T> = { -readonly [K in keyof T]: T[K] };

function result(
  this: Writable<ExchangeResult>,
  exchangeId: string,
  status: ExchangeStatus,
  complete: boolean,
  createdAt: number,
  endedAt: number,
  durationMs: number,
  entries: readonly RequestResponse[],
  unanswered: readonly string[],
  committed: readonly string[],
  undecided: readonly string[],
): void {
  this.exchangeId = exchangeId;
  this.status = status;
  this.complete = complete;
  this.createdAt = createdAt;
  this.endedAt = endedAt;
  this.durationMs = durationMs;
  this.entries = entries;
  this.unanswered = unanswered;
  this.committed = committed;
  this.undecided = undecided;
}

function answered(
  this: Writable<RequestResponse>,
  correlationId: string,
  request: unknown,
  response: unknown,
  requestedAt: number,
  respondedAt: number,
  latencyMs: number,
): void {
  this.correlationId = correlationId;
  this.request = request;
  this.response = response;
  this.answered = true;
  this.requestedAt = requestedAt;
  this.respondedAt = respondedAt;
  this.latencyMs = latencyMs;
}

function unanswered(this: Writable<RequestResponse>, correlationId: string, request: unknown, requestedAt: number): void {
  this.correlationId = correlationId;
  this.request = request;
  this.answered = false;
  this.requestedAt = requestedAt;
}

for (const record of [result, answered, unanswered]) record.prototype = Object.prototype;

/** An {@link ExchangeResult}; the caller adds `reason` when there is one. */
export const Result = result as unknown as new <Req, Res>(
  exchangeId: string,
  status: ExchangeStatus,
  complete: boolean,
  createdAt: number,
  endedAt: number,
  durationMs: number,
  entries: readonly RequestResponse<Req, Res>[],
  unanswered: readonly string[],
  committed: readonly string[],
  undecided: readonly string[],
) => ExchangeResult<Req, Res>;

/** The {@link RequestResponse} of an answered request. */
export const Answered = answered as unknown as new <Req, Res>(
  correlationId: string,
  request: Req | undefined,
  response: Res,
  requestedAt: number,
  respondedAt: number,
  latencyMs: number,
) => RequestResponse<Req, Res>;

/** The {@link RequestResponse} of a request that was not answered. */
export const Unanswered = unanswered as unknown as new <Req, Res>(
  correlationId: string,
  request: Req | undefined,
  requestedAt: number,
) => RequestResponse<Req, Res>;
