import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/config/errors';
import { loadSuiteSpec, parseSuiteSpec, suiteCellSpecs } from '../../core/config/suite-spec';
import { assertRunId, assertSuiteId } from '../../core/storage/keys';
import { cellRunSpecInput, deepMerge, suiteCellRunId } from '../../core/util/suite-cells';

const base = {
  models: [
    { name: 'vit-b-32', bundle: 's3://bkt/models/a/' },
    { name: 'vit-b-16', bundle: 's3://bkt/models/b/' },
  ],
  datasets: [
    { name: 'pets', uri: 's3://bkt/datasets/pets/', fewShot: { shots: [1, 2] }, splitSeed: 3 },
    { name: 'cars', uri: 's3://bkt/datasets/cars/', classNames: { x: 'X car' } },
  ],
  run: { shardSize: 64, fewShot: { seeds: [1, 2] }, coop: { epochs: 5 }, classNames: { y: 'Y' } },
};

describe('suite spec', () => {
  it('builds each cell as run ∪ dataset overrides ∪ model bundle, dataset-major', () => {
    const spec = parseSuiteSpec(base);
    expect(spec.concurrency).toBe(4);
    const cells = suiteCellSpecs(spec);
    expect(cells.map((c) => `${c.model}/${c.dataset}`)).toEqual([
      'vit-b-32/pets',
      'vit-b-16/pets',
      'vit-b-32/cars',
      'vit-b-16/cars',
    ]);
    const pets16 = cells[1]!.spec;
    expect(pets16.model.bundle).toBe('s3://bkt/models/b/');
    expect(pets16.dataset.uri).toBe('s3://bkt/datasets/pets/');
    expect(pets16.dataset.splitSeed).toBe(3); // a dataset field goes under dataset:
    expect(pets16.fewShot).toEqual({ shots: [1, 2], seeds: [1, 2] }); // merged key by key
    expect(pets16.shardSize).toBe(64);
    expect(pets16.coop.epochs).toBe(5);
    expect({ ...(cells[2]!.spec.classNames as Record<string, string>) }).toEqual({
      y: 'Y',
      x: 'X car',
    });
  });

  it('refuses duplicate names, unsafe names, unknown fields and run.model before any work', () => {
    const bad = (patch: object, re: RegExp) => {
      expect(() => parseSuiteSpec({ ...base, ...patch })).toThrow(ConfigError);
      expect(() => parseSuiteSpec({ ...base, ...patch })).toThrow(re);
    };
    bad({ models: [base.models[0], base.models[0]] }, /model "vit-b-32" is listed more than once/);
    bad({ models: [{ name: 'a--b', bundle: 'x' }] }, /models\.0\.name: use letters/);
    bad({ models: [{ name: '../x', bundle: 'x' }] }, /models\.0\.name/);
    bad({ models: [{ name: 'x'.repeat(33), bundle: 'x' }] }, /at most 32/);
    bad(
      { datasets: [{ name: 'p', uri: 's3://bkt/p/', colour: 1 }] },
      /datasets\.0: Unrecognized key/,
    );
    bad({ run: { model: { bundle: 'x' } } }, /run\.model: each cell’s model comes from `models:`/);
    bad({ run: { dataset: { uri: 's3://bkt/x/' } } }, /run\.dataset\.uri/);
    bad({ concurrency: 0 }, /concurrency/);
  });

  it('validates every cell with parseRunSpec and names the cells and the field', () => {
    const run = () =>
      parseSuiteSpec({ ...base, datasets: [{ name: 'p', uri: 'http://not-s3/' }] }, 'suite.yaml');
    expect(run).toThrow(/Invalid suite\.yaml: 2 cell\(s\) have an invalid run spec/);
    expect(run).toThrow(/cell vit-b-32 x p: Invalid run spec:\n {2}- dataset\.uri: expected s3:/);
    expect(() =>
      parseSuiteSpec({ ...base, run: { zeroShot: { templates: ['no placeholder'] } } }),
    ).toThrow(
      /4 cell\(s\)[\s\S]*zeroShot\.templates\.0: each template needs the \{c\}[\s\S]*and 1 more cells/,
    );
  });

  it('keeps a __proto__ class label as data when merging', () => {
    const merged = deepMerge(
      { classNames: { a: 'A' } },
      JSON.parse('{"classNames":{"__proto__":"P"}}') as Record<string, unknown>,
    );
    const names = merged.classNames as Record<string, string>;
    expect(Object.keys(names)).toEqual(['a', '__proto__']);
    expect(Object.getPrototypeOf(names)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).P).toBeUndefined();
  });

  it('derives child run ids that are valid run ids and unique per cell', () => {
    const suiteId = assertSuiteId('s'.repeat(60));
    const id = suiteCellRunId(suiteId, 'm'.repeat(32), 'd'.repeat(32));
    expect(assertRunId(id)).toBe(id);
    expect(() => assertSuiteId('a--b')).toThrow(/no "--"/);
    expect(() => assertSuiteId('s'.repeat(61))).toThrow(/1-60/);
    expect(cellRunSpecInput(base, { modelIndex: 0, datasetIndex: 1 })).toMatchObject({
      dataset: { uri: 's3://bkt/datasets/cars/' },
      model: { bundle: 's3://bkt/models/a/' },
    });
  });

  it('reads YAML files and names the file in errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'suite-spec-'));
    const file = join(dir, 'suite.yaml');
    writeFileSync(
      file,
      'models:\n  - {name: m, bundle: s3://bkt/m/}\ndatasets:\n  - {name: d, uri: s3://bkt/d/}\nconcurrency: 2\n',
    );
    expect((await loadSuiteSpec(file)).concurrency).toBe(2);
    writeFileSync(file, 'models: [\n');
    await expect(loadSuiteSpec(file)).rejects.toThrow(/Suite spec .*suite\.yaml is not valid YAML/);
  });
});
