/**
 * @file A Parquet dataset's class names (its ClassLabel's names, in label-id order), from where
 * Hugging Face keeps them: the dataset card's YAML front matter (README.md `dataset_info`), the
 * older dataset_infos.json, or the `huggingface` key-value metadata `datasets` writes into every
 * Parquet file. The spec's dataset.classes overrides them all.
 */
import { parse as parseYaml } from 'yaml';
import type { ListedObject, ObjectStore } from '../../storage/object-store';
import { ObjectTooLargeError } from '../../storage/object-store';
import { shown } from '../../util/text';
import { DatasetError } from '../types';
import type { FileMetaData } from './hyparquet';

/** A dataset card or dataset_infos.json larger than this is not read (they are kilobytes). */
const MAX_CARD_BYTES = 8 * 1024 * 1024;

export interface ClassLabelSources {
  data: ObjectStore;
  /** The dataset prefix (where README.md and dataset_infos.json live), ending in `/`. */
  prefix: string;
  listing: readonly ListedObject[];
  labelColumn: string;
  /** The config the files belong to (`default` for `data/...`, else the converter's folder). */
  config: string;
  /** The first Parquet file's URI and metadata. */
  first: { uri: string; metadata: FileMetaData };
}

/** The class names, or a DatasetError saying where they were looked for and how to give them. */
export async function findClassNames(src: ClassLabelSources): Promise<string[]> {
  const card = await readSmall(src, 'README.md');
  if (card !== undefined) {
    const names = namesFromCard(card, src);
    if (names) return names;
  }
  const infos = await readSmall(src, 'dataset_infos.json');
  if (infos !== undefined) {
    const names = namesFromInfos(infos, src);
    if (names) return names;
  }
  const names = namesFromFileMetadata(src);
  if (names) return names;
  throw new DatasetError(
    `Dataset s3://${src.data.bucket}/${src.prefix}: no class names for label column "${src.labelColumn}". They are looked for in README.md ` +
      `(dataset_info.features: class_label names), dataset_infos.json and the "huggingface" metadata of ${src.first.uri}. ` +
      'List them in the run spec as dataset.classes (in label-id order), or add the dataset card.',
  );
}

async function readSmall(src: ClassLabelSources, name: string): Promise<string | undefined> {
  const key = `${src.prefix}${name}`;
  if (!src.listing.some((o) => o.key === key)) return undefined;
  try {
    return await src.data.getText(key, { maxBytes: MAX_CARD_BYTES });
  } catch (err) {
    if (err instanceof ObjectTooLargeError)
      throw new DatasetError(
        `${src.data.uri(key)} is over ${MAX_CARD_BYTES} bytes; it is not read. Set dataset.classes in the run spec.`,
      );
    throw err;
  }
}

/** README.md's front matter: dataset_info (one config, or a list of them). */
function namesFromCard(text: string, src: ClassLabelSources): string[] | undefined {
  const uri = src.data.uri(`${src.prefix}README.md`);
  const m = /^\uFEFF?---\r?\n([\s\S]*?)\r?\n---\s*(\r?\n|$)/.exec(text);
  if (!m) return undefined;
  let front: unknown;
  try {
    front = parseYaml(m[1]!);
  } catch (err) {
    throw new DatasetError(
      `${uri}: its YAML front matter does not parse (${shown(err instanceof Error ? err.message : String(err))}). Fix the card, or set dataset.classes in the run spec.`,
    );
  }
  const info = pickConfig(asRecord(front)?.dataset_info, src.config);
  const features = asRecord(info)?.features;
  if (!Array.isArray(features)) return undefined;
  const feature = features.map(asRecord).find((f) => f?.name === src.labelColumn);
  const names = asRecord(asRecord(asRecord(feature)?.dtype)?.class_label)?.names;
  return names === undefined ? undefined : classNameList(names, `${uri} (dataset_info)`);
}

/** dataset_infos.json: {config: {features: {label: {names: [...], _type: 'ClassLabel'}}}}. */
function namesFromInfos(text: string, src: ClassLabelSources): string[] | undefined {
  const uri = src.data.uri(`${src.prefix}dataset_infos.json`);
  let infos: unknown;
  try {
    infos = JSON.parse(text);
  } catch (err) {
    throw new DatasetError(
      `${uri} is not JSON (${shown(err instanceof Error ? err.message : String(err))}). Fix it, or set dataset.classes in the run spec.`,
    );
  }
  const configs = asRecord(infos);
  if (!configs) return undefined;
  const keys = Object.keys(configs);
  const key = keys.includes(src.config) ? src.config : keys.length === 1 ? keys[0]! : undefined;
  if (key === undefined) return undefined;
  return classLabelNames(asRecord(asRecord(configs[key])?.features)?.[src.labelColumn], uri);
}

/** The `huggingface` key-value metadata `datasets` writes: {"info": {"features": {...}}}. */
function namesFromFileMetadata(src: ClassLabelSources): string[] | undefined {
  const kv = src.first.metadata.key_value_metadata?.find((e) => e.key === 'huggingface');
  if (!kv?.value) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value);
  } catch {
    return undefined; // not written by datasets; the error below says where names can come from
  }
  const features = asRecord(asRecord(asRecord(parsed)?.info)?.features);
  return classLabelNames(features?.[src.labelColumn], `${src.first.uri} ("huggingface" metadata)`);
}

function classLabelNames(feature: unknown, where: string): string[] | undefined {
  const f = asRecord(feature);
  if (f?._type !== 'ClassLabel' || f.names === undefined) return undefined;
  return classNameList(f.names, where);
}

/** dataset_info as one config or a list: the files' config, `default`, or the only one. */
function pickConfig(info: unknown, config: string): unknown {
  if (!Array.isArray(info)) return info;
  const configs = info.map(asRecord);
  return (
    configs.find((c) => c?.config_name === config) ??
    configs.find((c) => c?.config_name === 'default' || c?.config_name === undefined) ??
    (configs.length === 1 ? configs[0] : undefined)
  );
}

/** Names as a list, or as a mapping of id -> name ({'0': cat, '1': dog}) with ids 0..n-1. */
function classNameList(names: unknown, where: string): string[] {
  const bad = (why: string) =>
    new DatasetError(
      `${where}: the class names ${why}. Fix them, or set dataset.classes in the run spec.`,
    );
  let list: unknown[];
  if (Array.isArray(names)) list = names;
  else if (asRecord(names)) {
    const entries = Object.entries(names as Record<string, unknown>);
    list = new Array<unknown>(entries.length);
    for (const [id, name] of entries) {
      const i = Number(id);
      if (!/^\d+$/.test(id) || i >= entries.length)
        throw bad(`map id "${shown(id)}", but ids must be 0..${entries.length - 1}`);
      list[i] = name;
    }
  } else throw bad('are neither a list nor a mapping of id to name');
  if (list.length === 0) throw bad('are empty');
  return list.map((n, i) => {
    if ((typeof n !== 'string' && typeof n !== 'number') || String(n).trim() === '')
      throw bad(`have no usable name for id ${i}`);
    return String(n);
  });
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}
