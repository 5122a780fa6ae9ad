/**
 * @file The built-in dataset texts by name: CLIP_benchmark's class names and zero-shot templates
 * (data.ts, generated from the published lists; its header names the sources and commits). A name
 * is CLIP_benchmark's dataset name (`cifar10`, `pets`, `fgvc_aircraft`) or an alias below.
 */
import { BENCHMARK_DATASETS, BENCHMARK_TEXTS, type BenchmarkDataset } from './data';

/** Other names users call built-in datasets by; CLIP_benchmark's `vtab/` names among them. */
export const BENCHMARK_ALIASES = {
  oxford_pets: 'pets',
  'vtab/pets': 'pets',
  'vtab/caltech101': 'caltech101_vtab',
} as const satisfies Record<string, BenchmarkDataset>;

export type BenchmarkName = BenchmarkDataset | keyof typeof BENCHMARK_ALIASES;

const ALIASES = Object.keys(BENCHMARK_ALIASES) as (keyof typeof BENCHMARK_ALIASES)[];

/** Names `zeroShot.templates` accepts: every built-in dataset ships templates. */
export const TEMPLATE_SET_NAMES: readonly BenchmarkName[] = [...BENCHMARK_DATASETS, ...ALIASES];

/** Names `classNames` accepts: the built-in datasets whose sources publish class names. */
export const CLASS_LIST_NAMES: readonly BenchmarkName[] = TEMPLATE_SET_NAMES.filter(
  (n) => BENCHMARK_TEXTS[benchmarkDataset(n)].classNames !== undefined,
);

/** The dataset a name stands for (itself, or the one its alias names). */
export function benchmarkDataset(name: BenchmarkName): BenchmarkDataset {
  return Object.hasOwn(BENCHMARK_ALIASES, name)
    ? BENCHMARK_ALIASES[name as keyof typeof BENCHMARK_ALIASES]
    : (name as BenchmarkDataset);
}

export function isTemplateSetName(name: string): name is BenchmarkName {
  return (TEMPLATE_SET_NAMES as readonly string[]).includes(name);
}

export function isClassListName(name: string): name is BenchmarkName {
  return (CLASS_LIST_NAMES as readonly string[]).includes(name);
}

/** A built-in dataset's zero-shot templates, in the benchmark's order. */
export function benchmarkTemplates(name: BenchmarkName): readonly string[] {
  return BENCHMARK_TEXTS[benchmarkDataset(name)].templates;
}

/** A built-in dataset's class names, in class-id order; the spec only lets CLASS_LIST_NAMES here. */
export function benchmarkClassList(name: BenchmarkName): readonly string[] {
  const names = BENCHMARK_TEXTS[benchmarkDataset(name)].classNames;
  if (!names) throw new Error(`built-in dataset ${name} publishes no class names`);
  return names;
}
