/**
 * @file CLIP's (and CoOp's) training augmentation, as torchvision applies it to a PIL image:
 * RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3), bicubic) then RandomHorizontalFlip.
 * Each view draws from its own generator seeded by (seed, image, view), so a re-run produces
 * identical views and adding views or images never changes the existing ones.
 */
import { seededRandom } from '../../util/random';
import { resizeCropBicubic } from './resample';

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** The generator of one view of one image. */
export function viewRandom(seed: string, imageId: string, view: number): () => number {
  return seededRandom(seed, imageId, view);
}

/** torchvision RandomResizedCrop.get_params: the crop box (top, left, height, width). */
export function randomResizedCropBox(width: number, height: number, rand: () => number) {
  const area = width * height;
  const [lo, hi] = [Math.log(3 / 4), Math.log(4 / 3)];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (0.08 + rand() * (1 - 0.08));
    const aspect = Math.exp(lo + rand() * (hi - lo));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return {
        top: Math.floor(rand() * (height - h + 1)),
        left: Math.floor(rand() * (width - w + 1)),
        height: h,
        width: w,
      };
    }
  }
  // Fallback, as torchvision: a central crop with the ratio clamped into range.
  const ratio = width / height;
  const [w, h] =
    ratio < 3 / 4
      ? [width, Math.round(width / (3 / 4))]
      : ratio > 4 / 3
        ? [Math.round(height * (4 / 3)), height]
        : [width, height];
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    height: h,
    width: w,
  };
}

/** One augmented view: crop the box, resize it to size x size (bicubic, Pillow's), maybe flip. */
export function augmentedView(src: RgbImage, size: number, rand: () => number): Uint8Array {
  const box = randomResizedCropBox(src.width, src.height, rand);
  const region = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    const from = ((box.top + y) * src.width + box.left) * 3;
    region.set(src.data.subarray(from, from + box.width * 3), y * box.width * 3);
  }
  const out = resizeCropBicubic(region, box.width, box.height, size, size, {
    x: 0,
    y: 0,
    width: size,
    height: size,
  });
  if (rand() < 0.5) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size / 2; x++) {
        const a = (y * size + x) * 3;
        const b = (y * size + (size - 1 - x)) * 3;
        for (let c = 0; c < 3; c++) [out[a + c], out[b + c]] = [out[b + c]!, out[a + c]!];
      }
    }
  }
  return out;
}
