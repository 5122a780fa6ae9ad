import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  listensOn,
  ServerStartError,
  stopProcess,
} from '../../infra/local-stack/processes';
import { startTemporal, startVersitygw } from '../../infra/local-stack/servers';
import { stackDown, stackUp } from '../../infra/local-stack/stack';
import { resolveTool } from '../../infra/local-stack/tools';

// Issue 12, item 15: a port chosen free and released could be taken before the server bound it
// (`bind: address already in use` for the Temporal UI port on a fresh clone), and the global
// setup's failure only read "No test files found". Here another process holds the port the stack
// is handed first: the servers must come up anyway, on other ports.

let occupier: Server;
let taken: number;
const accepted: Socket[] = [];

beforeAll(async () => {
  // Accepts connections and never answers: a health check that reaches it must not hang.
  occupier = createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
  taken = (occupier.address() as { port: number }).port;
});
afterAll(async () => {
  for (const socket of accepted) socket.destroy();
  await new Promise<void>((resolve) => occupier.close(() => resolve()));
});

/** A port picker that hands out the taken port at the given calls (1-based), free ones otherwise. */
function pickerTaking(at: (call: number) => boolean) {
  let calls = 0;
  return () => (at(++calls) ? Promise.resolve(taken) : freePort());
}

const tempDir = (label: string) => mkdtempSync(join(tmpdir(), `clipeval-${label}-`));
const credentials = {
  accessKeyId: 'portskey',
  secretAccessKey: 'portssecret123',
  region: 'us-east-1',
};

describe('local stack ports', () => {
  it('starts versitygw on a new port when the one it was given is taken', async () => {
    const dir = tempDir('vgw-port');
    const logFile = join(dir, 'versitygw.log');
    const s3 = await startVersitygw({
      bin: (await resolveTool('versitygw', { install: false })).path,
      dataDir: join(dir, 'data'),
      metaDir: join(dir, 'meta'),
      logFile,
      credentials,
      pickPort: pickerTaking((call) => call === 1),
    });
    try {
      expect(s3.endpoint).not.toBe(`http://127.0.0.1:${taken}`);
      expect(listensOn(s3.pid, Number(new URL(s3.endpoint).port))).toBe(true);
      expect(readFileSync(logFile, 'utf8')).toMatch(/address already in use/);
    } finally {
      await stopProcess(s3.pid, 'versitygw');
    }
  });

  it('starts Temporal again with new ports when its UI port is taken', async () => {
    const dir = tempDir('temporal-port');
    const logFile = join(dir, 'temporal.log');
    // Second pick: the UI port, as in the CI failure.
    const server = await startTemporal({
      bin: (await resolveTool('temporal', { install: false })).path,
      dbFile: join(dir, 'temporal.db'),
      logFile,
      namespace: 'default',
      pickPort: pickerTaking((call) => call === 2),
    });
    try {
      expect(server.uiUrl).not.toBe(`http://127.0.0.1:${taken}`);
      expect(listensOn(server.pid, Number(server.address.split(':')[1]))).toBe(true);
      expect(readFileSync(logFile, 'utf8')).toMatch(
        /can't set UI port \d+: .*address already in use/,
      );
    } finally {
      await stopProcess(server.pid, 'temporal');
    }
  });

  it('says which server failed, with its log file and last lines, when every try loses', async () => {
    const dir = tempDir('vgw-fail');
    const logFile = join(dir, 'versitygw.log');
    const failure = await startVersitygw({
      bin: (await resolveTool('versitygw', { install: false })).path,
      dataDir: join(dir, 'data'),
      metaDir: join(dir, 'meta'),
      logFile,
      credentials,
      pickPort: pickerTaking(() => true),
      tries: 2,
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ServerStartError);
    const message = (failure as Error).message;
    expect(message).toMatch(
      /^versitygw \(.*versitygw\): a port it was given was already in use on each of 2 tries/,
    );
    expect(message).toContain(`--- ${logFile} (last lines) ---`);
    expect(message).toMatch(/bind: address already in use/);
  });

  it('brings a whole stack up while one of its first ports is taken', async () => {
    const home = tempDir('stack-port');
    // Call 1 is versitygw's port, call 3 Temporal's UI port.
    const up = await stackUp(home, { pickPort: pickerTaking((call) => call === 1 || call === 3) });
    try {
      expect(up.started).toBe(true);
      expect(up.env.CLIPEVAL_S3_ENDPOINT).not.toBe(`http://127.0.0.1:${taken}`);
      expect(up.state.temporal.uiUrl).not.toBe(`http://127.0.0.1:${taken}`);
    } finally {
      await stackDown(home);
    }
  });
});
