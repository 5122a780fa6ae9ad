import { describe, expect, it } from 'vitest';
import {
  BENCHMARK_ALIASES,
  CLASS_LIST_NAMES,
  TEMPLATE_SET_NAMES,
  benchmarkClassList,
  benchmarkTemplates,
} from '../../core/config/benchmark-texts/benchmark-texts';
import { BENCHMARK_DATASETS, BENCHMARK_TEXTS } from '../../core/config/benchmark-texts/data';
import { ConfigError } from '../../core/config/errors';
import { parseRunSpec } from '../../core/config/run-spec';
import { buildPlan } from '../../core/dataset/plan';
import type { DatasetItem } from '../../core/dataset/types';
import { OPENAI_IMAGENET_TEMPLATES, resolveTemplates } from '../../core/routes/zero-shot/templates';

// The built-in dataset texts: counts and entries as published (CLIP_benchmark@48de38c JSON files,
// openai/CLIP@d05afc4 data/prompts.md, counted there with Python), the spec's names for them, and
// how planning matches a built-in class list to a dataset's classes.

/** [classes, templates] per dataset, counted in the source files; `-`: no published class names. */
const COUNTS: Record<string, [number | '-', number]> = {
  caltech101: [102, 34],
  caltech101_vtab: [102, 34],
  cars: [196, 8],
  cifar10: [10, 18],
  cifar100: [100, 18],
  clevr_closest_object_distance: [6, 1],
  clevr_count_all: [8, 1],
  country211: [211, 5],
  diabetic_retinopathy: [5, 1],
  dmlab: [6, 1],
  dsprites_label_orientation: ['-', 4],
  dsprites_label_x_position: ['-', 1],
  dtd: [47, 8],
  eurosat: [10, 3],
  fer2013: [7, 6],
  fgvc_aircraft: [100, 2],
  flowers: [102, 1],
  food101: [101, 1],
  gtsrb: [43, 3],
  imagenet1k: [1000, 80],
  kitti_closest_vehicle_distance: [4, 1],
  mnist: [10, 1],
  pcam: [2, 2],
  pets: [37, 1],
  renderedsst2: ['-', 1],
  resisc45: ['-', 4],
  smallnorb_label_azimuth: ['-', 4],
  smallnorb_label_elevation: ['-', 4],
  stl10: [10, 2],
  sun397: [397, 2],
  svhn: [10, 6],
  voc2007: ['-', 1],
  voc2007_multilabel: ['-', 1],
};

describe('built-in dataset texts', () => {
  it('holds every published list with its class and template counts', () => {
    expect([...BENCHMARK_DATASETS].sort()).toEqual(Object.keys(COUNTS).sort());
    for (const [name, [classes, templates]] of Object.entries(COUNTS)) {
      const texts = BENCHMARK_TEXTS[name as keyof typeof BENCHMARK_TEXTS];
      expect([name, texts.classNames?.length ?? '-', texts.templates.length]).toEqual([
        name,
        classes,
        templates,
      ]);
      for (const t of texts.templates) expect(t).toContain('{c}');
    }
  });

  it('keeps the entries verbatim and in the benchmark order', () => {
    const classes = (n: Parameters<typeof benchmarkClassList>[0]) => benchmarkClassList(n);
    expect(classes('cifar10')).toEqual([
      'airplane',
      'automobile',
      'bird',
      'cat',
      'deer',
      'dog',
      'frog',
      'horse',
      'ship',
      'truck',
    ]);
    expect(classes('cifar100').slice(0, 3)).toEqual(['apple', 'aquarium fish', 'baby']);
    expect(classes('pets').slice(0, 3)).toEqual([
      'Abyssinian',
      'American Bulldog',
      'American Pit Bull Terrier',
    ]);
    expect(classes('flowers')[0]).toBe('pink primrose');
    expect(classes('gtsrb')[0]).toBe('red and white circle 20 kph speed limit');
    expect(classes('eurosat')[0]).toBe('annual crop land');
    expect(classes('imagenet1k')[0]).toBe('tench');
    expect(classes('imagenet1k')[999]).toBe('toilet paper');
    // Stanford Cars keeps the devkit's order, not an alphabetical one.
    expect(classes('cars').slice(4, 6)).toEqual([
      'Acura TSX Sedan 2012',
      'Acura Integra Type R 2001',
    ]);
    expect(classes('cars').at(-1)).toBe('smart fortwo Convertible 2012');
    expect(classes('sun397').at(-1)).toBe('youth hostel');
    expect(classes('fgvc_aircraft').at(-1)).toBe('Yak-42');
    expect(classes('caltech101').slice(0, 3)).toEqual([
      'background',
      'off-center face',
      'centered face',
    ]);
    expect(classes('caltech101_vtab').slice(0, 2)).toEqual(['accordion', 'airplane']);
    expect(BENCHMARK_TEXTS.cifar10.classNamesFrom).toBe('openai-clip');
    expect(BENCHMARK_TEXTS.pets.classNamesFrom).toBe('clip-benchmark');
    expect(benchmarkTemplates('pets')).toEqual(['a photo of a {c}, a type of pet.']);
    expect(benchmarkTemplates('food101')).toEqual(['a photo of {c}, a type of food.']);
    expect(benchmarkTemplates('mnist')).toEqual(['a photo of the number: "{c}".']);
    expect(benchmarkTemplates('cifar10').slice(0, 2)).toEqual([
      'a photo of a {c}.',
      'a blurry photo of a {c}.',
    ]);
  });

  it('answers the aliases with their dataset', () => {
    expect(BENCHMARK_ALIASES).toEqual({
      oxford_pets: 'pets',
      'vtab/pets': 'pets',
      'vtab/caltech101': 'caltech101_vtab',
    });
    expect(benchmarkClassList('oxford_pets')).toBe(benchmarkClassList('pets'));
    expect(benchmarkClassList('vtab/caltech101')).toBe(benchmarkClassList('caltech101_vtab'));
    expect(benchmarkTemplates('vtab/caltech101')).toEqual(benchmarkTemplates('caltech101'));
    expect(CLASS_LIST_NAMES).toContain('oxford_pets');
    expect(CLASS_LIST_NAMES).not.toContain('voc2007');
    expect(TEMPLATE_SET_NAMES).toContain('voc2007');
  });

  it('resolves a dataset name to its templates; openai-imagenet is imagenet1k', () => {
    expect(resolveTemplates('cifar10')).toBe(BENCHMARK_TEXTS.cifar10.templates);
    expect(resolveTemplates('oxford_pets')).toEqual(['a photo of a {c}, a type of pet.']);
    expect(resolveTemplates('openai-imagenet')).toEqual(resolveTemplates('imagenet1k'));
    expect(OPENAI_IMAGENET_TEMPLATES).toHaveLength(80);
    expect(OPENAI_IMAGENET_TEMPLATES[0]).toBe('a bad photo of a {c}.');
    expect(OPENAI_IMAGENET_TEMPLATES.at(-1)).toBe('a tattoo of the {c}.');
  });
});

describe('run spec: built-in names', () => {
  const parse = (extra: Record<string, unknown>) =>
    parseRunSpec({ dataset: { uri: 's3://bkt/ds/' }, ...extra });
  const refused = (extra: Record<string, unknown>): string => {
    try {
      parse(extra);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    return expect.fail('the spec was accepted');
  };

  it('accepts a dataset name for templates and class names, beside the other forms', () => {
    expect(parse({ zeroShot: { templates: 'cifar10' } }).zeroShot.templates).toBe('cifar10');
    expect(parse({ zeroShot: { templates: 'vtab/pets' } }).zeroShot.templates).toBe('vtab/pets');
    expect(parse({ zeroShot: { templates: 'openai-imagenet' } }).zeroShot.templates).toBe(
      'openai-imagenet',
    );
    expect(parse({ zeroShot: { templates: ['my {c}'] } }).zeroShot.templates).toEqual(['my {c}']);
    expect(parse({}).zeroShot.templates).toBe('default');
    expect(parse({ classNames: 'pets' }).classNames).toBe('pets');
    expect(parse({ classNames: 'oxford_pets' }).classNames).toBe('oxford_pets');
    expect({ ...(parse({ classNames: { a: 'A' } }).classNames as object) }).toEqual({ a: 'A' });
  });

  it('refuses unknown names, listing the known ones', () => {
    const templates = refused({ zeroShot: { templates: 'cifar-10' } });
    expect(templates).toMatch(/zeroShot\.templates: expected default, openai-imagenet, dataset/);
    expect(templates).toMatch(/cifar10, cifar100, .*pets.*voc2007/);
    expect(refused({ zeroShot: { templates: ['no placeholder'] } })).toMatch(
      /zeroShot\.templates\.0: each template needs the \{c\} placeholder/,
    );
    const names = refused({ classNames: 'imagenet' });
    expect(names).toMatch(/classNames: no built-in class list named "imagenet": expected one of /);
    expect(names).toMatch(/cifar10, .*imagenet1k, .*oxford_pets/);
    expect(refused({ classNames: 'resisc45' })).toMatch(
      /built-in dataset "resisc45" has templates but no published class names/,
    );
    expect(refused({ classNames: 7 })).toMatch(/classNames: expected a mapping/);
  });
});

describe('planning with built-in class names', () => {
  const item = (className: string, split: 'train' | 'test', i: number): DatasetItem => ({
    uri: `s3://bkt/ds/${split}/${className}/${i}.jpg`,
    size: 1,
    etag: 'e',
    className,
    split,
  });
  const items = (labels: readonly string[]) =>
    labels.flatMap((l) => [item(l, 'train', 0), item(l, 'test', 1)]);
  const plan = (extra: Record<string, unknown>, labels: readonly string[], labelSpace?: string[]) =>
    buildPlan({
      runId: 'r',
      spec: parseRunSpec({ dataset: { uri: 's3://bkt/ds/' }, ...extra }),
      kind: labelSpace ? 'parquet' : 'image-folder',
      items: items(labels),
      skipped: [],
      ...(labelSpace ? { classes: labelSpace } : {}),
    });
  const nameOf = (p: ReturnType<typeof plan>, label: string) =>
    p.classNames[p.classes.indexOf(label)];
  const refused = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    return expect.fail('planning succeeded');
  };

  it('matches labels spelled like the names, whatever the sort order', () => {
    // torchvision's Oxford pets folders: cats capitalised, dogs in snake_case; sorting puts the
    // capitalised ones first, so positions differ from the benchmark's.
    const pets = benchmarkClassList('pets');
    const cats = new Set(['Abyssinian', 'Bengal', 'Birman', 'Bombay', 'British Shorthair']);
    for (const c of ['Egyptian Mau', 'Maine Coon', 'Persian', 'Ragdoll', 'Russian Blue'])
      cats.add(c);
    for (const c of ['Siamese', 'Sphynx']) cats.add(c);
    const folders = pets.map((n) => (cats.has(n) ? n : n.toLowerCase()).replace(/ /g, '_'));
    const p = plan({ classNames: 'pets' }, folders);
    expect(p.classes.slice(0, 2)).toEqual(['Abyssinian', 'Bengal']);
    expect(nameOf(p, 'american_bulldog')).toBe('American Bulldog');
    expect(nameOf(p, 'Bengal')).toBe('Bengal');
    expect(p.classNames.toSorted()).toEqual([...pets].sort());
  });

  it('names sorted numeric labels by id, 0-based or 1-based', () => {
    const gtsrb = benchmarkClassList('gtsrb');
    const zeroBased = plan(
      { classNames: 'gtsrb' },
      gtsrb.map((_, i) => String(i)),
    );
    expect(zeroBased.classes.slice(0, 3)).toEqual(['0', '1', '10']);
    expect(nameOf(zeroBased, '10')).toBe(gtsrb[10]);
    expect(nameOf(zeroBased, '42')).toBe(gtsrb[42]);
    // GTSRB's own folders are zero-padded (00000 ... 00042).
    const padded = plan(
      { classNames: 'gtsrb' },
      gtsrb.map((_, i) => String(i).padStart(5, '0')),
    );
    expect(padded.classNames).toEqual(gtsrb);
    const flowers = benchmarkClassList('flowers');
    const oneBased = plan(
      { classNames: 'flowers' },
      flowers.map((_, i) => String(i + 1)),
    );
    expect(nameOf(oneBased, '1')).toBe('pink primrose');
    expect(nameOf(oneBased, '102')).toBe(flowers[101]);
    const gap = flowers.map((_, i) => String(i === 0 ? 500 : i));
    expect(refused(() => plan({ classNames: 'flowers' }, gap))).toMatch(
      /flowers names classes by id, and the dataset's labels are numbers .* but not the ids 0\.\.101 \(or 1\.\.102\)/,
    );
  });

  it('names a given order by position: dataset.classes or the dataset label space', () => {
    const labels = ['c3', 'c1', 'c0', 'c2', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'];
    const cifar10 = benchmarkClassList('cifar10');
    const listed = plan(
      { classNames: 'cifar10', dataset: { uri: 's3://bkt/ds/', classes: labels } },
      labels,
    );
    expect(listed.classes).toEqual(labels);
    expect(listed.classNames).toEqual(cifar10);
    const space = plan({ classNames: 'cifar10' }, labels, labels);
    expect(space.classNames).toEqual(cifar10);
    // Names in a label space are matched by text, so a different order cannot mislabel them.
    const reversed = [...cifar10].reverse();
    expect(plan({ classNames: 'cifar10' }, reversed, reversed).classNames).toEqual(reversed);
  });

  it('refuses a sorted order it cannot tie to the benchmark ids, saying how to fix it', () => {
    const labels = Array.from({ length: 10 }, (_, i) => `class_${String.fromCharCode(97 + i)}`);
    const msg = refused(() => plan({ classNames: 'cifar10' }, labels));
    expect(msg).toMatch(
      /^Dataset s3:\/\/bkt\/ds\/: run spec classNames: cifar10 names classes by the benchmark's class ids/,
    );
    expect(msg).toMatch(/labels sorted by name \(class_a, class_b/);
    expect(msg).toMatch(
      /dataset\.classes in the benchmark’s order .* or give classNames as a mapping/,
    );
  });

  it('refuses a class count other than the list’s, naming both counts and the fix', () => {
    const msg = refused(() => plan({ classNames: 'cifar10' }, ['airplane', 'bird', 'cat']));
    expect(msg).toMatch(
      /classNames: cifar10 names 10 classes, but the dataset has 3 \(airplane, bird, cat\)/,
    );
    expect(msg).toMatch(/List the classes as dataset\.classes .* mapping of label: display name/);
    expect(refused(() => plan({ classNames: 'imagenet1k' }, ['a', 'b']))).toMatch(
      /imagenet1k names 1000 classes, but the dataset has 2/,
    );
  });

  it("keeps a list's own repeated names (ImageNet's two missiles) as the benchmark does", () => {
    const imagenet = benchmarkClassList('imagenet1k');
    const p = plan(
      { classNames: 'imagenet1k' },
      imagenet.map((_, i) => String(i)),
    );
    expect(nameOf(p, '657')).toBe('missile');
    expect(nameOf(p, '744')).toBe('missile');
    expect(p.classNames.toSorted()).toEqual([...imagenet].sort());
  });
});
