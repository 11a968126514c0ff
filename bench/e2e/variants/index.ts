// Imports each broker's set-up on demand, so that `--only=redis` needs
// neither amqplib nor nats to load.
import type { Broker } from '../config.js';
import type { BrokerSetup } from '../variant.js';

export async function setupBroker(broker: Broker, runId: string): Promise<BrokerSetup> {
  switch (broker) {
    case 'rabbitmq':
      return (await import('./rabbitmq.js')).setupRabbitmq(runId);
    case 'redis':
      return (await import('./redis.js')).setupRedis(runId);
    case 'nats':
      return (await import('./nats.js')).setupNats(runId);
  }
}

/** What each broker's echo worker must be told: the run's names there. */
export async function echoEnvFor(broker: Broker, runId: string, maxConcurrency: number): Promise<Record<string, string>> {
  switch (broker) {
    case 'rabbitmq':
      return { RRXC_E2E_QUEUE: (await import('./rabbitmq.js')).jobsQueue(runId) };
    case 'redis': {
      const names = (await import('./redis.js')).redisNames(runId);
      return { RRXC_E2E_RUN_KEYS: `${runId}*`, RRXC_E2E_BULL_PREFIX: names.bullPrefix, RRXC_E2E_BULL_QUEUE: names.bullQueue, RRXC_E2E_JOBS_LIST: names.jobsList, RRXC_E2E_MAX_CONCURRENCY: String(maxConcurrency) };
    }
    case 'nats':
      return { RRXC_E2E_SUBJECT: (await import('./nats.js')).natsSubject(runId) };
  }
}
