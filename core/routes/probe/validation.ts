import { seededRandom, shuffledIndices } from '../../util/random';
import { type Features, concatRows, rowsByClass, selectRows } from './features';

export type ValidationSource = 'val-split' | 'carved-from-train' | 'defaults' | 'fixed';

/**
 * Where the regularisation comes from: selected by fitting on `fitOn` and scoring `val`, or not
 * selected ('defaults': the recipe's published value; 'fixed': the value the recipe names).
 * `finalRows` are the rows the returned probe is fitted on.
 */
export type ValidationPlan =
  | {
      source: 'val-split' | 'carved-from-train';
      fitOn: Features;
      val: Features;
      finalRows: Features;
      note?: string;
    }
  | { source: 'defaults'; finalRows: Features; note: string }
  | { source: 'fixed'; finalRows: Features; note?: undefined };

/** Share of each class's train rows carved out for validation when no val split is given. */
export const CARVED_FRACTION = 0.2;

/**
 * The validation rule:
 * - the recipe fixes the value (`fixed`): no selection, fit on train (+ val when given);
 * - val rows given: select on them (fitting on train), then refit on train + val;
 * - none, but every class that has train rows has at least 2: carve a seeded stratified 20% of
 *   each class out of train (at least one row, and at least one left to train on), select on
 *   it, then refit on all of train;
 * - otherwise (some class has a single row, so a held-out set would lose a class): no
 *   selection, the recipe's published default is used.
 * Classes with no train rows at all are not counted: no fit can learn them anyway.
 */
export function planValidation(
  train: Features,
  val: Features | undefined,
  numClasses: number,
  seed: number,
  fixed = false,
): ValidationPlan {
  const hasVal = val !== undefined && val.n > 0;
  if (fixed) return { source: 'fixed', finalRows: hasVal ? concatRows(train, val) : train };
  if (hasVal) return { source: 'val-split', fitOn: train, val, finalRows: concatRows(train, val) };
  const byClass = rowsByClass(train.labels, numClasses).filter((rows) => rows.length > 0);
  const single = byClass.filter((rows) => rows.length < 2).length;
  if (byClass.length === 0 || single > 0)
    return {
      source: 'defaults',
      finalRows: train,
      note: `no val split, and ${single} class(es) have a single train image, too few to carve a validation set from train: the recipe's default regularisation was used`,
    };
  const held: number[] = [];
  const kept: number[] = [];
  for (const rows of byClass) {
    const c = train.labels[rows[0]!]!;
    const take = Math.min(rows.length - 1, Math.max(1, Math.round(CARVED_FRACTION * rows.length)));
    const order = shuffledIndices(rows.length, seededRandom('probe-carve-val', seed, c));
    order.forEach((j, i) => (i < take ? held : kept).push(rows[j]!));
  }
  const sorted = (a: number[]) => a.sort((p, q) => p - q);
  return {
    source: 'carved-from-train',
    fitOn: selectRows(train, sorted(kept)),
    val: selectRows(train, sorted(held)),
    finalRows: train,
    note: `no val split: selected on ${held.length} train images carved out (a seeded ${CARVED_FRACTION * 100}% of each class), then refit on all ${train.n}`,
  };
}
