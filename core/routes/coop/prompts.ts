/**
 * @file CoOp's prompts, laid out as the official code does (KaiyangZhou/CoOp, PromptLearner): the
 * class name is tokenised inside "X X ... X <name>." and the context vectors replace the X token
 * embeddings. Class-token position:
 *   end     [SOS] ctx_1..ctx_n <name> . [EOS]
 *   middle  [SOS] ctx_1..ctx_n/2 <name> ctx_n/2+1..ctx_n . [EOS]
 *   front   [SOS] <name> ctx_1..ctx_n . [EOS]
 * The sequence is cut at the longest prompt's end token + 1 (the causal mask makes every later
 * position irrelevant to the pooled feature), instead of the 77 positions the official code runs.
 */
import { ConfigError } from '../../config/errors';
import type { PromptBatch } from '../../model/onnx/coop-graph';
import type { ClipTokenizer } from '../../model/text/tokenizer';

export type ClassTokenPosition = 'end' | 'middle' | 'front';

export interface PromptLayout {
  batch: PromptBatch;
  nCtx: number;
  /** positions[c][j]: where context vector j sits in class c's prompt. */
  positions: Int32Array[];
}

/**
 * Every class's prompt laid out for `nCtx` context vectors. A prompt longer than the model's
 * context is a ConfigError (permanent: the same spec and classes fail every time); `fromInit`
 * says nCtx came from coop.init's words, so the message names the right setting.
 */
export function buildPrompts(
  tokenizer: ClipTokenizer,
  classNames: readonly string[],
  opts: { nCtx: number; position: ClassTokenPosition; maxLength: number; fromInit?: boolean },
): PromptLayout {
  const [sos, x] = tokenizer.encode('X');
  const [, period] = tokenizer.encode('.');
  const eos = tokenizer.encode('')[1]!;
  const rows = classNames.map((name) => {
    const nameIds = tokenizer.encode(name).slice(1, -1);
    const ctx = (n: number) => new Array<number>(n).fill(-1); // -1 marks a context slot
    const half = Math.floor(opts.nCtx / 2);
    const body =
      opts.position === 'end'
        ? [...ctx(opts.nCtx), ...nameIds]
        : opts.position === 'front'
          ? [...nameIds, ...ctx(opts.nCtx)]
          : [...ctx(half), ...nameIds, ...ctx(opts.nCtx - half)];
    const ids = [sos!, ...body, period!, eos];
    if (ids.length > opts.maxLength) {
      throw new ConfigError(
        `CoOp prompt for class "${name}" needs ${ids.length} tokens with ${opts.nCtx} context vectors; the model allows ${opts.maxLength}. ` +
          `Shorten the class name (run spec classNames) or ${opts.fromInit ? 'use fewer coop.init words (one context vector per token)' : 'lower coop.nCtx'}.`,
        'run spec',
      );
    }
    return ids;
  });
  const length = Math.max(...rows.map((r) => r.length));
  const c = rows.length;
  const ids = new BigInt64Array(c * length).fill(BigInt(eos));
  const mask = new Float32Array(c * length);
  const eotIndex = new BigInt64Array(c);
  const positions = rows.map((row, ci) => {
    const slots: number[] = [];
    row.forEach((id, p) => {
      ids[ci * length + p] = BigInt(id === -1 ? x! : id);
      if (id === -1) {
        mask[ci * length + p] = 1;
        slots.push(p);
      }
    });
    eotIndex[ci] = BigInt(row.length - 1);
    return Int32Array.from(slots);
  });
  return { batch: { ids, mask, eotIndex, classes: c, length }, nCtx: opts.nCtx, positions };
}

/** Token ids of the initialisation words without start and end tokens ("a photo of a": 4). */
export function initWordIds(tokenizer: ClipTokenizer, words: string): number[] {
  return tokenizer.encode(words).slice(1, -1);
}
