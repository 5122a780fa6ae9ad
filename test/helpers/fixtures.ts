import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The committed tiny random-init CLIP bundle and its HF transformers golden outputs. */
export const TINY_BUNDLE = join(__dirname, '..', 'fixtures', 'tiny-clip');
export const TINY_GOLDEN = join(__dirname, '..', 'fixtures', 'tiny-clip-golden');

export interface GoldenImage {
  file: string;
  crop: string;
  mode: string;
  size: [number, number];
  embedding: number[];
}
export interface GoldenText {
  text: string;
  ids: number[];
  embedding: number[];
}

export const goldenImages = (): GoldenImage[] =>
  JSON.parse(readFileSync(join(TINY_GOLDEN, 'image-embeddings.json'), 'utf8')) as GoldenImage[];
export const goldenTexts = (): GoldenText[] =>
  JSON.parse(readFileSync(join(TINY_GOLDEN, 'text-embeddings.json'), 'utf8')) as GoldenText[];
