/**
 * @file Writes core/config/benchmark-texts/data.ts, the built-in class names and zero-shot
 * templates, from the lists CLIP_benchmark and OpenAI CLIP publish, read at pinned commits out of
 * local git clones (bare or not):
 *
 *   npx tsx infra/benchmark-texts/generate.ts --clip-benchmark <git dir> --openai-clip <git dir>
 *
 * Run once when the pins move; the output is committed, so neither tsx nor the compiled dist/
 * reads anything at run time. The lists are taken verbatim (order included: a class's position is
 * its id in the benchmark); only `dummy` (CLIP_benchmark's test dataset) is left out.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';

const CLIP_BENCHMARK = {
  repository: 'https://github.com/LAION-AI/CLIP_benchmark',
  commit: '48de38c1689fa6d8b4dd53e3370c669c3bb18117',
  license: 'MIT (Copyright (c) 2022, Mehdi Cherti)',
  classNamesFile: 'clip_benchmark/datasets/en_classnames.json',
  templatesFile: 'clip_benchmark/datasets/en_zeroshot_classification_templates.json',
};

const OPENAI_CLIP = {
  repository: 'https://github.com/openai/CLIP',
  commit: 'd05afc436d78f1c48dc0dbf8e5980a9d471f35f6',
  license: 'MIT (Copyright (c) 2021 OpenAI)',
  promptsFile: 'data/prompts.md',
};

/**
 * Datasets whose class names CLIP_benchmark takes from torchvision at run time (so its JSON has
 * none), taken from OpenAI's data/prompts.md instead: its section title for each.
 */
const OPENAI_SECTIONS: Record<string, string> = {
  cifar10: 'CIFAR10',
  cifar100: 'CIFAR100',
  food101: 'Food101',
  sun397: 'SUN397',
  cars: 'StanfordCars',
  fgvc_aircraft: 'FGVCAircraft',
  dtd: 'DescribableTextures',
  stl10: 'STL10',
};

/**
 * CLIP_benchmark's `vtab/caltech101` reads class names under `caltech101_vtab` and templates
 * under `caltech101` (builder.py looks up `vtab/<name>`, then `<name>`).
 */
const TEMPLATES_OF: Record<string, string> = { caltech101_vtab: 'caltech101' };
const LEFT_OUT = new Set(['dummy']);

function gitShow(gitDir: string, commit: string, path: string): string {
  return execFileSync('git', ['--git-dir', gitDir, 'show', `${commit}:${path}`], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

function stringLists(text: string, what: string): Record<string, string[]> {
  const data = JSON.parse(text) as Record<string, unknown>;
  for (const [k, v] of Object.entries(data)) {
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string') || v.length === 0)
      throw new Error(`${what}: ${k} is not a non-empty list of strings`);
  }
  return data as Record<string, string[]>;
}

/** The `classes = [...]` list of one `## <title>` section: one `'name',` per line, nothing else. */
function promptsClasses(markdown: string, title: string): string[] {
  const section = markdown.split(/^## /m).find((s) => s.split('\n')[0]!.trim() === title);
  const block = section?.match(/classes = \[\n([\s\S]*?)\n\]/)?.[1];
  if (block === undefined) throw new Error(`prompts.md: no classes list under "## ${title}"`);
  return block.split('\n').map((line) => {
    const m = line.match(/^\s*'([^'\\]*)',?$/);
    if (!m) throw new Error(`prompts.md ${title}: unexpected line ${JSON.stringify(line)}`);
    return m[1]!;
  });
}

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  if (!value)
    throw new Error(
      `usage: generate.ts --clip-benchmark <git dir> --openai-clip <git dir> (missing ${name})`,
    );
  return value;
}

async function main(): Promise<void> {
  const cb = arg('--clip-benchmark');
  const oa = arg('--openai-clip');
  const classLists = stringLists(
    gitShow(cb, CLIP_BENCHMARK.commit, CLIP_BENCHMARK.classNamesFile),
    'en_classnames.json',
  );
  const templateLists = stringLists(
    gitShow(cb, CLIP_BENCHMARK.commit, CLIP_BENCHMARK.templatesFile),
    'templates json',
  );
  const prompts = gitShow(oa, OPENAI_CLIP.commit, OPENAI_CLIP.promptsFile);

  const names = [...new Set([...Object.keys(templateLists), ...Object.keys(classLists)])]
    .filter((n) => !LEFT_OUT.has(n))
    .sort();
  const entries = names.map((name) => {
    const templates = templateLists[TEMPLATES_OF[name] ?? name];
    if (!templates) throw new Error(`no templates for ${name}`);
    const bad = templates.filter((t) => !t.includes('{c}'));
    if (bad.length > 0) throw new Error(`${name}: templates without {c}: ${bad.join(' | ')}`);
    const fromOpenAi = OPENAI_SECTIONS[name];
    if (fromOpenAi && classLists[name]) throw new Error(`${name}: class names in both sources`);
    const classNames =
      classLists[name] ?? (fromOpenAi ? promptsClasses(prompts, fromOpenAi) : undefined);
    const entry: Record<string, unknown> = { templates };
    if (classNames) {
      entry.classNames = classNames;
      entry.classNamesFrom = fromOpenAi ? 'openai-clip' : 'clip-benchmark';
    }
    return [name, entry] as const;
  });

  const source = `/**
 * @file GENERATED by infra/benchmark-texts/generate.ts from published lists; do not edit by hand
 * (rerun the script when its pinned commits move).
 *
 * Templates (every dataset) and the class names marked \`clip-benchmark\`:
 *   ${CLIP_BENCHMARK.repository}
 *   commit ${CLIP_BENCHMARK.commit}
 *   files ${CLIP_BENCHMARK.templatesFile}
 *     and ${CLIP_BENCHMARK.classNamesFile}
 *   license ${CLIP_BENCHMARK.license}; the lists largely come from OpenAI CLIP's notebooks (MIT).
 *
 * Class names marked \`openai-clip\` (datasets whose names CLIP_benchmark reads from torchvision
 * at run time, so its JSON has none):
 *   ${OPENAI_CLIP.repository}
 *   commit ${OPENAI_CLIP.commit}
 *   file ${OPENAI_CLIP.promptsFile}
 *   license ${OPENAI_CLIP.license}
 *
 * A class's position in its list is its id in the benchmark. \`caltech101_vtab\` (CLIP_benchmark's
 * vtab/caltech101 names) uses caltech101's templates, as CLIP_benchmark does.
 */

/** The built-in datasets, by CLIP_benchmark's name for them. */
export const BENCHMARK_DATASETS = ${JSON.stringify(names)} as const;

export type BenchmarkDataset = (typeof BENCHMARK_DATASETS)[number];

export interface BenchmarkTexts {
  /** Zero-shot templates; \`{c}\` is the class name. */
  templates: readonly string[];
  /** Display names in class-id order, where a source publishes them. */
  classNames?: readonly string[];
  /** Which repository the class names come from (see the header). */
  classNamesFrom?: 'clip-benchmark' | 'openai-clip';
}

export const BENCHMARK_SOURCES = ${JSON.stringify({ clipBenchmark: CLIP_BENCHMARK, openaiClip: OPENAI_CLIP })} as const;

export const BENCHMARK_TEXTS: Readonly<Record<BenchmarkDataset, BenchmarkTexts>> = ${JSON.stringify(Object.fromEntries(entries))};
`;
  const out = join(__dirname, '../../core/config/benchmark-texts/data.ts');
  const options = (await resolveConfig(out)) ?? {};
  writeFileSync(out, await format(source, { ...options, filepath: out }));
  for (const [name, e] of entries) {
    const c = e.classNames as string[] | undefined;
    console.log(
      `${name}: ${c ? c.length : '-'} classes, ${(e.templates as string[]).length} templates`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
