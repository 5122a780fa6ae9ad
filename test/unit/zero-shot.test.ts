import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { humanizeClassName, promptClassNames } from '../../core/dataset/class-names';
import { scaledCosineScores } from '../../core/routes/scores';
import { decodePrototypes, encodePrototypes } from '../../core/routes/zero-shot/prototype-file';
import { classPrototypes } from '../../core/routes/zero-shot/prototypes';
import {
  DEFAULT_TEMPLATES,
  OPENAI_IMAGENET_TEMPLATES,
  resolveTemplates,
} from '../../core/routes/zero-shot/templates';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import { ClipTextEncoder } from '../../core/model/onnx/encoders';
import { seededRandom, gaussian } from '../../core/util/random';
import { type ClipTokenizer, tokenizerForBundle } from '../../core/model/text/tokenizer';
import { l2NormalizeRows } from '../../core/util/vectors';
import { TINY_BUNDLE } from '../helpers/fixtures';

// Zero-shot: class names, templates, prototypes and scores, against a straightforward reference
// on hand-made embeddings and against HF transformers on the tiny fixture bundle.

describe('class names', () => {
  it('humanises underscores, hyphens and camelCase', () => {
    expect(humanizeClassName('golden_retriever')).toBe('golden retriever');
    expect(humanizeClassName('sea-lion')).toBe('sea lion');
    expect(humanizeClassName('trafficLight')).toBe('traffic Light');
    expect(humanizeClassName('TVMonitor')).toBe('TV Monitor');
    expect(humanizeClassName('  a__b--c ')).toBe('a b c');
  });
  it('takes display names from the spec and refuses unknown labels', () => {
    expect(promptClassNames(['n01', 'cat_dog'], { n01: 'tench' })).toEqual(['tench', 'cat dog']);
    expect(() => promptClassNames(['a'], { b: 'x' })).toThrow(/classNames names labels .*: b/);
  });
});

describe('templates', () => {
  it('has the five default and OpenAI 80 ImageNet templates, each with {c}', () => {
    expect(DEFAULT_TEMPLATES).toHaveLength(5);
    expect(OPENAI_IMAGENET_TEMPLATES).toHaveLength(80);
    expect(new Set(OPENAI_IMAGENET_TEMPLATES).size).toBe(80);
    for (const t of OPENAI_IMAGENET_TEMPLATES) expect(t).toContain('{c}');
    expect(resolveTemplates(['my {c}'])).toEqual(['my {c}']);
  });
});

/** Hand-made unit vectors: the straightforward reference, written out in the slowest way. */
function randomUnitRows(n: number, dim: number, seed: string): Float32Array {
  const g = gaussian(seededRandom(seed));
  return l2NormalizeRows(Float32Array.from({ length: n * dim }, g), dim);
}

describe('zero-shot on hand-made embeddings', () => {
  const dim = 8;
  it('prototypes are the normalised mean of normalised template embeddings', async () => {
    const names = ['cat', 'dog', 'fish'];
    const templates = ['a {c}', 'the {c}', 'my {c}'];
    const table = new Map<string, Float32Array>();
    const all = randomUnitRows(9, dim, 'prompts');
    names.forEach((n, c) =>
      templates.forEach((t, j) =>
        table.set(t.replace('{c}', n), all.slice((c * 3 + j) * dim, (c * 3 + j + 1) * dim)),
      ),
    );
    // An encoder double that returns the hand-made embedding of each prompt text.
    let texts: string[] = [];
    const tokenizer = {
      encodeBatch: (t: readonly string[]) => {
        texts = [...t];
        return { ids: new BigInt64Array(t.length), shape: [t.length, 1] as [number, number] };
      },
    } as unknown as ClipTokenizer;
    const encoder = {
      encode: () => {
        const out = new Float32Array(texts.length * dim);
        texts.forEach((t, i) => out.set(table.get(t)!, i * dim));
        return Promise.resolve(out);
      },
    } as unknown as ClipTextEncoder;
    const protos = await classPrototypes({ encoder, tokenizer, dim }, names, templates, {
      batchSize: 2,
    });
    names.forEach((n, c) => {
      const mean = new Float64Array(dim);
      for (const t of templates) {
        const e = table.get(t.replace('{c}', n))!;
        for (let d = 0; d < dim; d++) mean[d]! += e[d]! / templates.length;
      }
      const norm = Math.hypot(...mean);
      for (let d = 0; d < dim; d++) expect(protos[c * dim + d]).toBeCloseTo(mean[d]! / norm, 6);
    });
  });

  it('scores are logit_scale x cosine, in blocks, for any number of rows', async () => {
    const images = randomUnitRows(600, dim, 'images');
    const classes = randomUnitRows(4, dim, 'classes');
    const scores = await scaledCosineScores(images, classes, dim, 100);
    for (const i of [0, 255, 256, 599]) {
      for (let c = 0; c < 4; c++) {
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += images[i * dim + d]! * classes[c * dim + d]!;
        expect(scores[i * 4 + c]).toBeCloseTo(100 * dot, 4);
      }
    }
  });

  it('prototype files round-trip through Arrow with their provenance', () => {
    const prototypes = randomUnitRows(3, dim, 'p');
    const file = {
      labels: ['a_b', 'c', 'd'],
      names: ['a b', 'c', 'd'],
      templates: ['x {c}'],
      bundleHash: 'f'.repeat(64),
      prototypes,
      dim,
    };
    expect(decodePrototypes(encodePrototypes(file))).toEqual(file);
  });
});

describe('zero-shot against HF transformers (tiny fixture bundle)', () => {
  let bundle: ModelBundle;
  let encoder: ClipTextEncoder;
  let tokenizer: ClipTokenizer;
  beforeAll(async () => {
    bundle = await loadBundle(TINY_BUNDLE);
    encoder = await ClipTextEncoder.create(bundle, { threads: 1 });
    tokenizer = await tokenizerForBundle(bundle);
  });
  afterAll(() => encoder.close());

  it('prototypes and logits match CLIPModel.get_text_features', async () => {
    const names = promptClassNames(['golden_retriever', 'tabbyCat', 'sports-car', 'tench']);
    const templates = [...DEFAULT_TEMPLATES, 'itap of my {c}.'];
    const dim = bundle.manifest.architecture.embedDim;
    const protos = await classPrototypes({ encoder, tokenizer, dim }, names, templates);
    const images = randomUnitRows(5, dim, 'hf-images');
    const logits = await scaledCosineScores(images, protos, dim, bundle.manifest.logitScale);

    const python = join(__dirname, '..', '..', '.venv', 'bin', 'python');
    if (!existsSync(python)) expect.fail(`${python} is missing: run bash infra/exporter/setup.sh`);
    const r = spawnSync(
      python,
      [join(__dirname, '..', '..', 'infra', 'checks', 'zero_shot_reference.py')],
      {
        input: JSON.stringify({ names, templates, images: Array.from(images), dim }),
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const ref = JSON.parse(r.stdout) as { prototypes: number[]; logits: number[] };
    const maxDiff = (a: ArrayLike<number>, b: number[]) =>
      Math.max(...b.map((v, i) => Math.abs(v - a[i]!)));
    // fp32 ONNX Runtime vs fp32 PyTorch: 1e-5 on unit vectors, 1e-3 on logits (x100).
    expect(maxDiff(protos, ref.prototypes)).toBeLessThan(1e-5);
    expect(maxDiff(logits, ref.logits)).toBeLessThan(1e-3);
  });
});
