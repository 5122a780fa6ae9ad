/**
 * @file A loopback HTTP proxy in front of the S3 server that injects faults into a deterministic
 * share of object reads: 503 SlowDown responses and connection resets. Everything else passes
 * through untouched (headers included, so SigV4 signatures stay valid).
 */
import {
  type IncomingMessage,
  type Server,
  type ServerResponse,
  createServer,
  request,
} from 'node:http';

export interface FaultProxy {
  endpoint: string;
  injected: { slowDown: number; reset: number };
  close: () => Promise<void>;
}

export async function startFaultProxy(
  target: string,
  opts: { every503: number; everyReset: number },
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const injected = { slowDown: 0, reset: 0 };
  let reads = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // Only object reads are faulted (the SDK tags them x-id=GetObject), not listings.
    if (req.method === 'GET' && req.url?.includes('x-id=GetObject')) {
      reads++;
      if (reads % opts.everyReset === 0) {
        injected.reset++;
        req.socket.destroy();
        return;
      }
      if (reads % opts.every503 === 0) {
        injected.slowDown++;
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
        );
        return;
      }
    }
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    injected,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
