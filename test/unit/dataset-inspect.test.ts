import { describe, expect, it } from 'vitest';
import { parseRunSpec } from '../../core/config/run-spec';
import { summarizeDataset } from '../../core/dataset/inspect';
import { loadDataset, type LoadedDataset } from '../../core/dataset/load';
import type { DatasetItem } from '../../core/dataset/types';
import { MemoryS3 } from '../helpers/memory-s3';

const item = (uri: string, className: string, split: DatasetItem['split']): DatasetItem => ({
  uri,
  size: 1,
  etag: 'e',
  className,
  split,
});

describe('dataset inspect summary', () => {
  it('summarises a loaded dataset: label space in id order, counts, skipped by reason, templates, first keys in plan order', () => {
    const tar = 's3://b/wds/test/0.tar';
    const loaded: LoadedDataset = {
      kind: 'webdataset',
      items: [
        item(`${tar}#s0000003.jpg`, 'zebra', 'test'),
        item(`${tar}#s0000001.jpg`, 'ant', 'test'),
        item(`${tar}#s0000002.jpg`, 'zebra', 'test'),
        item(`${tar}#s0000000.jpg`, 'zebra', 'test'),
        item('s3://b/wds/train/0.tar#s0000000.png', 'ant', 'train'),
      ],
      skipped: [
        { uri: `${tar}#s0000009.cls`, reason: 'a .cls without an image' },
        { uri: `${tar}#s0000010.cls`, reason: 'a .cls without an image' },
        { uri: `${tar}#s0000011.jpg`, reason: 'label 7 outside classnames.txt' },
      ],
      classes: ['zebra', 'ant', 'unused'],
      templates: ['a photo of a {c}.', 'art of the {c}.'],
    };
    const s = summarizeDataset('s3://b/wds/', loaded, { skippedExamples: 2 });
    expect(s).toEqual({
      uri: 's3://b/wds/',
      format: 'webdataset',
      images: 5,
      classes: { count: 3, first: ['zebra', 'ant', 'unused'], fromDataset: true },
      splits: { train: 1, val: 0, test: 4 },
      skipped: {
        count: 3,
        byReason: { 'a .cls without an image': 2, 'label 7 outside classnames.txt': 1 },
        examples: loaded.skipped.slice(0, 2),
      },
      templates: loaded.templates,
      samples: {
        train: ['s3://b/wds/train/0.tar#s0000000.png'],
        val: [],
        test: [`${tar}#s0000000.jpg`, `${tar}#s0000001.jpg`, `${tar}#s0000002.jpg`],
      },
    });
    expect(summarizeDataset('u', loaded, { classes: 1 }).classes.first).toEqual(['zebra']);
  });

  it('inspects an ImageFolder as planning loads it, writing nothing', async () => {
    const s3 = new MemoryS3(['src']);
    for (const k of ['train/dog/2.jpg', 'train/cat/1.jpg', 'test/cat/3.png', 'README.md'])
      s3.put('src', `ds/${k}`, 'x');
    const spec = parseRunSpec({ dataset: { uri: 's3://src/ds/' } });
    const s = summarizeDataset(spec.dataset.uri, await loadDataset(s3.store('src'), spec.dataset));
    expect(s).toMatchObject({
      format: 'image-folder',
      layout: 'split-folders',
      images: 3,
      classes: { count: 2, first: ['cat', 'dog'], fromDataset: false },
      splits: { train: 2, val: 0, test: 1 },
      skipped: { count: 1, examples: [{ uri: 's3://src/ds/README.md' }] },
      samples: {
        train: ['s3://src/ds/train/cat/1.jpg', 's3://src/ds/train/dog/2.jpg'],
        val: [],
        test: ['s3://src/ds/test/cat/3.png'],
      },
    });
    expect(s.templates).toBeUndefined();
    expect(s3.puts).toEqual([]);
  });
});
