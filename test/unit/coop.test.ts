import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CoopCheckpointFile,
  CoopDivergedError,
  decodeCheckpoint,
  encodeCheckpoint,
} from '../../core/routes/coop/checkpoint';
import { ConfigError } from '../../core/config/errors';
import { parseRunSpec } from '../../core/config/run-spec';
import { checkInitTokens } from '../../core/routes/coop/initial-state';
import { buildPrompts, initWordIds } from '../../core/routes/coop/prompts';
import { PermanentError } from '../../core/util/errors';
import { defaultEpochs, learningRate, sgdStep } from '../../core/routes/coop/schedule';
import { gatherGradient, scatterContext } from '../../core/routes/coop/trainer';
import { loadBundle } from '../../core/model/bundle';
import { type ClipTokenizer, tokenizerForBundle } from '../../core/model/text/tokenizer';
import { TINY_BUNDLE } from '../helpers/fixtures';

// CoOp's pieces that need no graph: prompt layout, the published schedule, torch's SGD,
// checkpoints, and moving the context in and out of the prompt tensor.
let tokenizer: ClipTokenizer;
beforeAll(async () => {
  tokenizer = await tokenizerForBundle(await loadBundle(TINY_BUNDLE));
});

const SOS = 49406;
const EOS = 49407;

describe('CoOp prompts', () => {
  it('lays out [SOS] ctx <name> . [EOS] with the class name at the end, front or middle', () => {
    const x = tokenizer.encode('X')[1]!;
    const period = tokenizer.encode('.')[1]!;
    const name = tokenizer.encode('golden retriever').slice(1, -1);
    const row = (position: 'end' | 'front' | 'middle') => {
      const l = buildPrompts(tokenizer, ['golden retriever'], { nCtx: 4, position, maxLength: 77 });
      return { ids: Array.from(l.batch.ids, Number), pos: Array.from(l.positions[0]!), l };
    };
    const end = row('end');
    expect(end.ids).toEqual([SOS, x, x, x, x, ...name, period, EOS]);
    expect(end.pos).toEqual([1, 2, 3, 4]);
    expect(Number(end.l.batch.eotIndex[0])).toBe(end.ids.length - 1);
    expect(Array.from(end.l.batch.mask)).toEqual(end.ids.map((_, i) => (i >= 1 && i <= 4 ? 1 : 0)));
    const front = row('front');
    expect(front.ids).toEqual([SOS, ...name, x, x, x, x, period, EOS]);
    expect(front.pos).toEqual([1, 2, 3, 4].map((p) => p + name.length));
    const middle = row('middle');
    expect(middle.ids).toEqual([SOS, x, x, ...name, x, x, period, EOS]);
    expect(middle.pos).toEqual([1, 2, 3 + name.length, 4 + name.length]);
  });

  it('cuts the sequence at the longest end token + 1 and pads the rest', () => {
    const l = buildPrompts(tokenizer, ['cat', 'a very long class name indeed'], {
      nCtx: 16,
      position: 'end',
      maxLength: 77,
    });
    const eots = Array.from(l.batch.eotIndex, Number);
    expect(l.batch.length).toBe(Math.max(...eots) + 1);
    expect(l.batch.length).toBeLessThan(30);
    expect(Number(l.batch.ids[eots[0]! + 1])).toBe(EOS); // padding after the short prompt
  });

  it('refuses a class name that does not fit the context length', () => {
    expect(() =>
      buildPrompts(tokenizer, ['word '.repeat(70)], { nCtx: 16, position: 'end', maxLength: 77 }),
    ).toThrow(/needs \d+ tokens .* allows 77/);
  });

  it('counts initialisation words as CoOp does ("a photo of a" is 4 vectors)', () => {
    expect(initWordIds(tokenizer, 'a photo of a')).toHaveLength(4);
  });

  it('fails permanently on a prompt too long, naming the setting that made it long', () => {
    const long = (fromInit: boolean) => () =>
      buildPrompts(tokenizer, ['word '.repeat(70)], {
        nCtx: 16,
        position: 'end',
        maxLength: 77,
        fromInit,
      });
    expect(long(false)).toThrow(ConfigError);
    expect(long(false)).toThrow(PermanentError);
    expect(long(false)).toThrow(/lower coop\.nCtx/);
    expect(long(true)).toThrow(/use fewer coop\.init words/);
  });

  it('caps coop.init at 64 tokens once the tokenizer is known (words can be several tokens)', () => {
    // 40 words pass the spec's 64-word cap, but each of these is several BPE tokens.
    const init = 'antidisestablishmentarianism '.repeat(40).trim();
    expect(() => parseRunSpec({ dataset: { uri: 's3://bkt/d/' }, coop: { init } })).not.toThrow();
    const tokens = initWordIds(tokenizer, init).length;
    expect(tokens).toBeGreaterThan(64);
    expect(() => checkInitTokens(init, tokens)).toThrow(ConfigError);
    expect(() => checkInitTokens(init, tokens)).toThrow(
      new RegExp(`is ${tokens} tokens for this model's tokenizer; .* allows 1 to 64`),
    );
    expect(() => checkInitTokens('?', 0)).toThrow(/is 0 tokens/);
    expect(() => checkInitTokens('a photo of a', 4)).not.toThrow();
  });
});

describe('CoOp schedule and optimiser', () => {
  const s = { epochs: 50, lr: 0.002, warmupEpochs: 1, warmupLr: 1e-5 };
  it('warms up at a constant 1e-5, then anneals from 0.002 by cosine per epoch', () => {
    expect(learningRate(s, 0)).toBe(1e-5);
    expect(learningRate(s, 1)).toBeCloseTo(0.002, 12);
    expect(learningRate(s, 2)).toBeCloseTo((0.002 * (1 + Math.cos(Math.PI / 50))) / 2, 12);
    expect(learningRate(s, 49)).toBeCloseTo((0.002 * (1 + Math.cos((48 * Math.PI) / 50))) / 2, 12);
    expect([1, 2, 4, 8, 16].map(defaultEpochs)).toEqual([50, 100, 100, 200, 200]);
  });

  it('matches torch.optim.SGD(momentum=0.9, weight_decay=5e-4) step by step', () => {
    // Reference values written out from torch's update rule for two steps.
    const p = Float32Array.of(1, -2);
    const buf = new Float32Array(2);
    const o = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };
    sgdStep(p, Float32Array.of(0.5, 0.25), buf, { ...o, firstStep: true });
    const g1 = [0.5 + 5e-4 * 1, 0.25 + 5e-4 * -2];
    expect(p[0]).toBeCloseTo(1 - 0.1 * g1[0]!, 6);
    expect(p[1]).toBeCloseTo(-2 - 0.1 * g1[1]!, 6);
    const p1 = [p[0]!, p[1]!];
    sgdStep(p, Float32Array.of(-1, 1), buf, { ...o, firstStep: false });
    const b2 = [0.9 * g1[0]! + (-1 + 5e-4 * p1[0]!), 0.9 * g1[1]! + (1 + 5e-4 * p1[1]!)];
    expect(p[0]).toBeCloseTo(p1[0]! - 0.1 * b2[0]!, 6);
    expect(p[1]).toBeCloseTo(p1[1]! - 0.1 * b2[1]!, 6);
  });
});

describe('CoOp context tensor', () => {
  const width = 3;
  const layout = () =>
    buildPrompts(tokenizer, ['cat', 'golden retriever'], {
      nCtx: 2,
      position: 'middle',
      maxLength: 77,
    });

  it('scatters a shared context to every class and sums its gradient back', () => {
    const l = layout();
    const ctx = Float32Array.of(1, 2, 3, 4, 5, 6);
    const full = scatterContext(ctx, l, width, false);
    for (let c = 0; c < 2; c++)
      l.positions[c]!.forEach((p, j) =>
        expect(
          Array.from(
            full.subarray((c * l.batch.length + p) * width, (c * l.batch.length + p + 1) * width),
          ),
        ).toEqual(Array.from(ctx.subarray(j * width, (j + 1) * width))),
      );
    // The gradient of a shared context is the sum over classes of the gradient at its slots.
    const g = gatherGradient(full, l, width, false);
    expect(Array.from(g)).toEqual(Array.from(ctx, (v) => 2 * v));
  });

  it('keeps one context per class with CSC', () => {
    const l = layout();
    const ctx = Float32Array.from({ length: 2 * 2 * width }, (_, i) => i);
    expect(Array.from(gatherGradient(scatterContext(ctx, l, width, true), l, width, true))).toEqual(
      Array.from(ctx),
    );
  });
});

/** What S3 gives back: the checkpoint after a JSON round trip. */
const viaJson = (f: CoopCheckpointFile) => JSON.parse(JSON.stringify(f)) as CoopCheckpointFile;

describe('CoOp checkpoints', () => {
  const state = () => ({
    epoch: 3,
    steps: 12,
    losses: [2.1, 1.7, 1.2],
    ctx: Float32Array.of(0.5, -0.25, 1e-8),
    momentum: Float32Array.of(0, 1, 2),
  });
  it('round-trips exactly', () => {
    const file = encodeCheckpoint(state(), 'h', [1, 1, 3]);
    expect(decodeCheckpoint(viaJson(file), 'test')).toEqual(state());
  });
  it('refuses to write or read a non-finite state', () => {
    const bad = { ...state(), ctx: Float32Array.of(0, Number.NaN, 0) };
    expect(() => encodeCheckpoint(bad, 'h', [1, 1, 3])).toThrow(CoopDivergedError);
    const file = viaJson(encodeCheckpoint(state(), 'h', [1, 1, 3]));
    file.losses[1] = Number.NaN; // JSON turns it into null on the way to S3
    expect(() => decodeCheckpoint(viaJson(file), 's3://b/ckpt')).toThrow(
      /CoOp diverged at s3:\/\/b\/ckpt: epoch 2 loss/,
    );
  });
});
