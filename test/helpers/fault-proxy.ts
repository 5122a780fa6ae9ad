/**
 * @file A loopback HTTP proxy in front of the S3 server that injects faults into object reads
 * (and, when asked, object writes): 503 SlowDown responses, connection resets and slow responses.
 * Everything else passes through untouched (headers included, so SigV4 signatures stay valid).
 *
 * Two ways to choose the faulted requests: every n-th read (`every503`, `everyReset`: the
 * deterministic share the S3 fault test counts on), or a seeded schedule (`seed` + rates: the
 * chaos soak's, reproducible from its seed). `active` turns the faults off and on at run time.
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
  injected: { slowDown: number; reset: number; slow: number };
  /** Faults are injected only while true (default true). */
  active: boolean;
  close: () => Promise<void>;
}

export interface FaultOptions {
  /** Every n-th object read answers 503 SlowDown. */
  every503?: number;
  /** Every n-th object read has its connection reset. */
  everyReset?: number;
  /** A seeded schedule instead: each faultable request draws its fault from this seed. */
  seed?: number;
  /** Shares (0..1) of faultable requests that answer 503, are reset, are slowed. */
  rate503?: number;
  rateReset?: number;
  rateSlow?: number;
  /** How long a slowed request waits before it is forwarded (default 800 ms). */
  slowMs?: number;
  /** Fault object writes (PUT) too; a reset write is dropped before it reaches the server. */
  writes?: boolean;
}

/** mulberry32: a small seeded PRNG, so a soak's fault schedule is reproducible from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Fault = 'slowDown' | 'reset' | 'slow' | undefined;

function faultChooser(opts: FaultOptions): () => Fault {
  if (opts.seed !== undefined) {
    const r = seededRandom(opts.seed);
    const [p503, pReset, pSlow] = [opts.rate503 ?? 0, opts.rateReset ?? 0, opts.rateSlow ?? 0];
    return () => {
      const x = r();
      if (x < pReset) return 'reset';
      if (x < pReset + p503) return 'slowDown';
      if (x < pReset + p503 + pSlow) return 'slow';
      return undefined;
    };
  }
  let reads = 0;
  return () => {
    reads++;
    if (opts.everyReset && reads % opts.everyReset === 0) return 'reset';
    if (opts.every503 && reads % opts.every503 === 0) return 'slowDown';
    return undefined;
  };
}

// The SDK tags object reads x-id=GetObject and writes x-id=PutObject; listings are never faulted.
function faultable(req: IncomingMessage, writes: boolean): boolean {
  if (req.method === 'GET') return req.url?.includes('x-id=GetObject') ?? false;
  return writes && req.method === 'PUT' && (req.url?.includes('x-id=PutObject') ?? false);
}

export async function startFaultProxy(target: string, opts: FaultOptions): Promise<FaultProxy> {
  const upstream = new URL(target);
  const injected = { slowDown: 0, reset: 0, slow: 0 };
  const choose = faultChooser(opts);
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const proxy: FaultProxy = {
    endpoint: '',
    injected,
    active: true,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const fault = proxy.active && faultable(req, opts.writes ?? false) ? choose() : undefined;
    if (fault === 'reset') {
      injected.reset++;
      req.socket.destroy();
      return;
    }
    if (fault === 'slowDown') {
      injected.slowDown++;
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
      );
      return;
    }
    if (fault === 'slow') {
      injected.slow++;
      req.pause();
      setTimeout(() => forward(req, res), opts.slowMs ?? 800);
      return;
    }
    forward(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  proxy.endpoint = `http://127.0.0.1:${port}`;
  return proxy;
}
