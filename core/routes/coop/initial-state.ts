/**
 * @file Where CoOp's training starts: the context vectors before the first step (random, or the
 * token embeddings of init words as the official code does) and the prompt layout they slot into.
 */
import { ConfigError } from '../../config/errors';
import { MAX_COOP_CONTEXT } from '../../config/run-limits';
import type { CoopSpec } from '../../config/run-spec';
import type { CoopGraph } from '../../model/onnx/coop-graph';
import type { ClipTokenizer } from '../../model/text/tokenizer';
import type { CoopState } from './checkpoint';
import { type PromptLayout, buildPrompts, initWordIds } from './prompts';
import { randomContext } from './trainer';

export interface PromptSetup {
  layout: PromptLayout;
  /** The state of a fresh training (a checkpoint of an earlier attempt replaces it). */
  init: CoopState;
  /** [contexts, nCtx, width]: the shape of the stored context. */
  dims: number[];
}

/**
 * The fresh state and the prompts of `classNames` (the plan's, or the base half's under
 * base-to-new), laid out for the spec's nCtx.
 */
export async function setupPrompts(
  graph: CoopGraph,
  tokenizer: ClipTokenizer,
  spec: CoopSpec,
  classNames: readonly string[],
  seed: number,
): Promise<PromptSetup> {
  const classes = classNames.length;
  const { nCtx, state } = await initialState(graph, tokenizer, spec, classes, seed);
  const layout = promptLayout(graph, tokenizer, spec, nCtx, classNames);
  return { layout, init: state, dims: [spec.classSpecific ? classes : 1, nCtx, graph.width] };
}

/**
 * The prompts of `classNames` with `nCtx` context slots: those CoOp trains with, or, under
 * base-to-new, the prompts of every class that the shared context learned on the base half fills.
 */
export function promptLayout(
  graph: CoopGraph,
  tokenizer: ClipTokenizer,
  spec: CoopSpec,
  nCtx: number,
  classNames: readonly string[],
): PromptLayout {
  return buildPrompts(tokenizer, classNames, {
    nCtx,
    position: spec.classTokenPosition,
    maxLength: graph.maxLength,
    fromInit: spec.init !== 'random',
  });
}

/** The starting context: random N(0, 0.02^2), or the token embeddings of the init words. */
async function initialState(
  graph: CoopGraph,
  tokenizer: ClipTokenizer,
  spec: Pick<CoopSpec, 'nCtx' | 'init' | 'classSpecific'>,
  classes: number,
  seed: number,
): Promise<{ nCtx: number; state: CoopState }> {
  const contexts = spec.classSpecific ? classes : 1;
  if (spec.init === 'random') {
    return {
      nCtx: spec.nCtx,
      state: freshState(randomContext(contexts, spec.nCtx, graph.width, seed)),
    };
  }
  // As the official code: the words' token embeddings (start token skipped), nCtx = their count.
  const words = initWordIds(tokenizer, spec.init);
  checkInitTokens(spec.init, words.length);
  const ids = [tokenizer.encode('')[0]!, ...words, tokenizer.encode('')[1]!];
  const embeds = await graph.tokenEmbeddings({
    ids: BigInt64Array.from(ids, BigInt),
    mask: new Float32Array(ids.length),
    eotIndex: BigInt64Array.of(BigInt(ids.length - 1)),
    classes: 1,
    length: ids.length,
  });
  const one = embeds.slice(graph.width, (1 + words.length) * graph.width);
  const ctx = new Float32Array(contexts * one.length);
  for (let c = 0; c < contexts; c++) ctx.set(one, c * one.length);
  return { nCtx: words.length, state: freshState(ctx) };
}

/**
 * coop.init's token count is its nCtx: at least 1 and at most MAX_COOP_CONTEXT (nCtx's cap). The
 * spec checks the word count; only the bundle's tokenizer knows the token count (a long word can
 * be several tokens).
 */
export function checkInitTokens(init: string, tokens: number): void {
  if (tokens < 1 || tokens > MAX_COOP_CONTEXT) {
    throw new ConfigError(
      `coop.init "${init}" is ${tokens} tokens for this model's tokenizer; CoOp uses one context vector per token and allows 1 to ${MAX_COOP_CONTEXT} (as coop.nCtx). ` +
        'Use fewer or shorter words, or init: random with coop.nCtx.',
      'run spec',
    );
  }
}

function freshState(ctx: Float32Array): CoopState {
  return { epoch: 0, steps: 0, losses: [], ctx, momentum: new Float32Array(ctx.length) };
}
