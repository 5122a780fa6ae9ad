/**
 * @file Which classes CoOp trains on: all of the plan's, or under base-to-new only the base half
 * (CoCoOp trains its model with the base class names only; the new ones are unseen until test).
 */
import type { Protocol } from '../../config/run-spec';
import type { Plan } from '../../dataset/plan';
import { classHalves } from '../base-to-new';
import { type Examples, selectExamples } from '../examples';

export interface TrainingClasses {
  /** Labels and prompt names of the trained classes: ids 0 .. count - 1 of the plan's list. */
  labels: string[];
  names: string[];
}

export function trainingClasses(plan: Plan, protocol: Protocol): TrainingClasses {
  if (protocol === 'all-classes') return { labels: plan.classes, names: plan.classNames };
  const m = classHalves(plan.classes.length).base.length;
  return { labels: plan.classes.slice(0, m), names: plan.classNames.slice(0, m) };
}

/** The train examples of the trained classes (the base half's ids are 0 .. m - 1: kept as they are). */
export function examplesOf(train: Examples, classes: TrainingClasses): Examples {
  const m = classes.labels.length;
  const kept: number[] = [];
  train.labels.forEach((y, i) => {
    if (y < m) kept.push(i);
  });
  return kept.length === train.labels.length ? train : selectExamples(train, kept);
}
