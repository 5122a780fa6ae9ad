import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { topK } from '../../core/routes/metrics';
import { decodePredictions, encodePredictions } from '../../core/routes/predictions';
import { runPythonJson } from '../helpers/python';

describe('per-image predictions (Arrow IPC file)', () => {
  const classNames = ['cat', 'dog', 'red fox'];
  const rows = [
    { key: 's3://b/test/cat/1.jpg', imageId: 'a1', label: 0 },
    { key: 's3://b/test/fox/2.jpg', imageId: 'b2', label: 2 },
    { key: 's3://b/test/dog/3.jpg', imageId: 'c3', label: 1 },
  ];
  const scores = Float32Array.of(0.9, 0.1, 0.5, 0.2, 0.7, 0.7, 0.3, 0.3, 0.3);
  const top = topK(scores, 3, 3, 2);
  const meta = { route: 'zero-shot', variant: '', run_id: 'run-1' };
  const dir = mkdtempSync(join(tmpdir(), 'clipeval-predictions-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips rows, top classes, scores and metadata', () => {
    const bytes = encodePredictions(rows, top, 2, classNames, meta);
    expect(Buffer.from(bytes.subarray(0, 6)).toString()).toBe('ARROW1');
    const back = decodePredictions(bytes);
    expect(back.rows).toEqual(rows);
    expect(back.k).toBe(2);
    expect(Array.from(back.top.indices)).toEqual([0, 2, 1, 2, 0, 1]);
    expect(Array.from(back.top.scores)).toEqual(Array.from(top.scores));
    expect(back.classNames).toEqual(classNames);
    expect(back.meta).toEqual(meta);
  });

  // The label_name dictionary's id came from Arrow JS's per-process counter: same predictions,
  // different bytes in each process (found with the chaos soak's shard race).
  it('encodes the same predictions to the same bytes, whatever was encoded before', () => {
    const first = encodePredictions(rows, top, 2, classNames, meta);
    encodePredictions(rows, top, 2, classNames, meta);
    expect(Buffer.from(encodePredictions(rows, top, 2, classNames, meta))).toEqual(
      Buffer.from(first),
    );
  });

  it('writes an empty file that still reads back', () => {
    const empty = { indices: new Int32Array(0), scores: new Float32Array(0) };
    const back = decodePredictions(encodePredictions([], empty, 5, classNames, meta));
    expect(back.rows).toEqual([]);
    expect(back.k).toBe(5);
    expect(back.classNames).toEqual(classNames);
  });

  it('refuses sizes or class indices that do not fit', () => {
    expect(() => encodePredictions(rows, top, 3, classNames, meta)).toThrow(/expected 3x3/);
    const bad = [{ ...rows[0]!, label: 3 }, rows[1]!, rows[2]!];
    expect(() => encodePredictions(bad, top, 2, classNames, meta)).toThrow(/class index 3/);
    expect(() => encodePredictions(rows, top, 2, classNames, { class_names: 'x' })).toThrow(
      /reserved/,
    );
  });

  it('is read by pyarrow with the documented schema', () => {
    const file = join(dir, 'predictions.arrow');
    writeFileSync(file, encodePredictions(rows, top, 2, classNames, meta));
    const seen = runPythonJson(PYARROW_READ, { file }) as Record<string, unknown>;
    expect(seen).toEqual({
      types: {
        key: 'string',
        image_id: 'string',
        label: 'int32',
        label_name: 'dictionary<values=string, indices=int32, ordered=0>',
        top_classes: 'fixed_size_list<item: int32 not null>[2]',
        top_scores: 'fixed_size_list<item: float not null>[2]',
      },
      label_name: ['cat', 'red fox', 'dog'],
      top_classes: [
        [0, 2],
        [1, 2],
        [0, 1],
      ],
      top_scores: Array.from({ length: 3 }, (_, i) =>
        Array.from(top.scores.subarray(2 * i, 2 * i + 2)),
      ),
      metadata: {
        'clipeval.route': 'zero-shot',
        'clipeval.variant': '',
        'clipeval.run_id': 'run-1',
        'clipeval.class_names': JSON.stringify(classNames),
        'clipeval.top_k': '2',
      },
    });
  });
});

const PYARROW_READ = `
import json, sys
import pyarrow as pa
import pyarrow.ipc as ipc
d = json.load(sys.stdin)
with pa.memory_map(d["file"]) as source:
    t = ipc.open_file(source).read_all()
print(json.dumps({
  "types": {f.name: str(f.type) for f in t.schema},
  "label_name": t.column("label_name").to_pylist(),
  "top_classes": t.column("top_classes").to_pylist(),
  "top_scores": t.column("top_scores").to_pylist(),
  "metadata": {k.decode(): v.decode() for k, v in t.schema.metadata.items()},
}))
`;
