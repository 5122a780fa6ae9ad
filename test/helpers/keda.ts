import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ClipevalEnv } from '../../core/config/env';
import { resolveKedaCheck, resolveTool } from '../../infra/local-stack/tools';

/** One trigger as KEDA's Temporal scaler read it (infra/keda-check/main.go `reading`). */
export interface KedaReading {
  trigger: number;
  type: string;
  metadata: Record<string, string>;
  endpoint: string;
  namespace: string;
  taskQueue: string;
  metricName: string;
  targetType: string;
  targetAverageValue: number;
  metric: number;
  isActive: boolean;
}

export interface KedaScaledObject {
  scaledObject: string;
  namespace: string;
  target: string;
  minReplicaCount: number;
  maxReplicaCount: number;
  triggers: KedaReading[];
  replicas: number;
}

export interface KedaCheck {
  keda: string;
  scaledObjects: KedaScaledObject[];
}

/** A rendered overlay: the file keda-check reads, and its objects for the test's own reading. */
export interface RenderedOverlay {
  file: string;
  objects: Array<{ kind: string; metadata: { name: string }; spec?: Record<string, unknown> }>;
}

function exec(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`${bin} ${args.join(' ')}: ${stderr || err.message}`))
        : resolve(stdout),
    );
  });
}

/** `kustomize build infra/k8s/overlays/<name>`, with the kustomize that infra/validate.sh uses. */
export async function renderOverlay(name: string): Promise<RenderedOverlay> {
  const kustomize = await resolveTool('kustomize', { install: false });
  const yaml = await exec(kustomize.path, ['build', join('infra', 'k8s', 'overlays', name)]);
  const file = join(mkdtempSync(join(tmpdir(), `clipeval-k8s-${name}-`)), 'rendered.yaml');
  writeFileSync(file, yaml);
  return { file, objects: parseAllDocuments(yaml).map((d) => d.toJS() as never) };
}

/**
 * Runs keda-check on a rendered overlay, against the test stack's Temporal and this test's private
 * task queues. Only environment values are replaced (the in-cluster address and the queue names);
 * the trigger metadata and the variable names it reads are the manifests' own.
 */
export async function kedaCheck(overlay: RenderedOverlay, env: ClipevalEnv): Promise<KedaCheck> {
  const bin = resolveKedaCheck({ install: false }).path;
  const stdout = await exec(bin, [
    '-manifests',
    overlay.file,
    '-env',
    `TEMPORAL_ADDRESS=${env.temporal.address}`,
    '-env',
    `TEMPORAL_NAMESPACE=${env.temporal.namespace}`,
    '-env',
    `CLIPEVAL_CPU_QUEUE=${env.queues.cpu}`,
    '-env',
    `CLIPEVAL_GPU_QUEUE=${env.queues.gpu}`,
  ]);
  return JSON.parse(stdout) as KedaCheck;
}

/**
 * Polls keda-check until `done` holds or `deadlineMs` passes. Temporal's backlog count is
 * approximate and the dev server updates it with some delay, so a single reading is not enough;
 * the deadline bounds the wait and the last reading goes into the failure message.
 */
export async function pollKedaCheck(
  overlay: RenderedOverlay,
  env: ClipevalEnv,
  what: string,
  done: (c: KedaCheck) => boolean,
  deadlineMs = 60_000,
): Promise<KedaCheck> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const check = await kedaCheck(overlay, env);
    if (done(check)) return check;
    if (Date.now() > deadline) {
      throw new Error(
        `keda-check: no reading with ${what} within ${deadlineMs} ms; last:\n${JSON.stringify(check, null, 2)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function scaledObject(check: KedaCheck, name: string): KedaScaledObject {
  const so = check.scaledObjects.find((s) => s.scaledObject === name);
  if (!so) throw new Error(`keda-check reported no ScaledObject ${name}`);
  return so;
}
