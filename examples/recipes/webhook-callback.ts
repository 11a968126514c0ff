// Recipe: webhook callbacks — call a partner, wait for its callback on a node:http listener.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller } from '../../src/index.js'; // from 'rrxc'
import { createCallbackListener, fromPath } from '../../src/integrations/index.js'; // from 'rrxc/integrations'

type Payment = { status: 'paid' | 'failed'; amount: number };

export async function webhookCallback(partnerUrl: string, amount: number): Promise<{ status: number; body: unknown }> {
  const controller = new Controller<unknown, Payment>({ timeout: 2_000 });

  // POST /callbacks/:id → 202 delivered, 200 duplicate, 410 rolled back, 404 unmatched, 400, 413.
  const callbacks = createCallbackListener(controller, {
    getCorrelationId: fromPath('/callbacks/:id'),
    maxBodySize: 64 * 1024,
    compensate: (payment, { correlationId }) => console.log(`late payment ${correlationId}: refund`, payment),
  });

  const server = createServer(async (req, res) => {
    if (req.url?.startsWith('/callbacks/')) return callbacks(req, res);

    // POST /pay: ask the partner, wait for its callback.
    const result = await controller.synchronize({}, async (xc) => {
      const { correlationId } = xc.registerRequest();
      const callbackUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callbacks/${correlationId}`;
      await fetch(partnerUrl, { method: 'POST', body: JSON.stringify({ amount, callbackUrl }), signal: xc.signal });
    });
    const payment = result.entries[0]?.response;
    res.writeHead(payment === undefined ? 504 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(payment ?? { error: result.status }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/pay`, { method: 'POST' });
    return { status: response.status, body: await response.json() };
  } finally {
    await controller.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
