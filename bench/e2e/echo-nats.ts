// Echo worker for the NATS variants (a child process of the runner):
// subscribes to the run's subject and responds with the request's bytes,
// to whatever reply subject it names — nats.js' muxed inbox, a hand-rolled
// one, rrxc's `<inbox>.<correlationId>`.
import { connect } from 'nats';
import { URLS } from './config.js';
import { echoEnv, serveUntilStopped } from './echo-lifecycle.js';

const subject = echoEnv('RRXC_E2E_SUBJECT');
const connection = await connect({ servers: URLS.nats, name: 'rrxc-e2e-echo' });
connection.subscribe(subject, { callback: (error, message) => void (error === null && message.respond(message.data)) });
// The subscription must be on the server before the runner's first request, or that one meets "no responders".
await connection.flush();

serveUntilStopped(async () => {
  await connection.drain();
});
