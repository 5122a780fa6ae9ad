/**
 * @file Prompt template sets for zero-shot prototypes. `{c}` is replaced by the class name.
 * `openai-imagenet` is OpenAI's 80-template ImageNet set (Prompt_Engineering_for_ImageNet notebook;
 * CLIP_benchmark's `imagenet1k`), which its published zero-shot figures use; a built-in dataset's
 * name (`cifar10`) is CLIP_benchmark's set for it (core/config/benchmark-texts/).
 */
import {
  type BenchmarkName,
  benchmarkTemplates,
} from '../../config/benchmark-texts/benchmark-texts';

export const DEFAULT_TEMPLATES: readonly string[] = [
  'a photo of a {c}.',
  'a blurry photo of a {c}.',
  'a close-up photo of a {c}.',
  'a photo of the large {c}.',
  'a photo of the small {c}.',
];

/** CLIP_benchmark's `imagenet1k` list, which is OpenAI's 80 verbatim, in the notebook's order. */
export const OPENAI_IMAGENET_TEMPLATES: readonly string[] = benchmarkTemplates('imagenet1k');

export type TemplateChoice =
  'default' | 'openai-imagenet' | 'dataset' | BenchmarkName | readonly string[];

/**
 * The templates of a choice; `dataset` is the dataset's own (planning checked there are some), a
 * built-in dataset's name its benchmark set.
 */
export function resolveTemplates(
  choice: TemplateChoice,
  datasetTemplates: readonly string[] = [],
): readonly string[] {
  if (choice === 'default') return DEFAULT_TEMPLATES;
  if (choice === 'openai-imagenet') return OPENAI_IMAGENET_TEMPLATES;
  if (choice === 'dataset') return datasetTemplates;
  if (typeof choice === 'string') return benchmarkTemplates(choice);
  return choice;
}

/**
 * The template with every `{c}` replaced by the class name, verbatim: a replacer function, since
 * a replacement string would expand `$&`, `$1`, `$$`, `` $` `` and `$'` in the name.
 */
export function fillTemplate(template: string, className: string): string {
  return template.replaceAll('{c}', () => className);
}
