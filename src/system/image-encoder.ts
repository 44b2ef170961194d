import type * as JpegJs from 'jpeg-js';
import type * as PngJs from 'pngjs';
import type { ImageEncoder, RgbImage } from '../ports/image-encoder.js';
import { loadOnFirstUse } from '../util/load-on-first-use.js';

const jpegLib = loadOnFirstUse<typeof JpegJs>('jpeg-js');
const pngLib = loadOnFirstUse<typeof PngJs>('pngjs');

export class JsImageEncoder implements ImageEncoder {
  fromPpm(ppm: Buffer): RgbImage {
    // Header: "P6" whitespace width whitespace height whitespace maxval, one whitespace byte, then pixels.
    const header = /^P6\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(ppm.subarray(0, 100).toString('latin1'));
    if (!header) throw new Error('not a binary PPM image');
    const width = Number(header[1]);
    const height = Number(header[2]);
    if (Number(header[3]) !== 255) throw new Error('only 8-bit PPM images are supported');
    const start = header[0].length;
    const pixels = width * height;
    if (ppm.length < start + pixels * 3) throw new Error('PPM image is truncated');
    const rgba = Buffer.alloc(pixels * 4);
    for (let i = 0, s = start, d = 0; i < pixels; i++, s += 3, d += 4) {
      rgba[d] = ppm[s]!;
      rgba[d + 1] = ppm[s + 1]!;
      rgba[d + 2] = ppm[s + 2]!;
      rgba[d + 3] = 255;
    }
    return { width, height, rgba };
  }

  jpeg(image: RgbImage, quality: number): Buffer {
    return jpegLib().encode({ width: image.width, height: image.height, data: image.rgba }, quality).data;
  }

  png(image: RgbImage): Buffer {
    const { PNG } = pngLib();
    const png = new PNG({ width: image.width, height: image.height });
    image.rgba.copy(png.data);
    return PNG.sync.write(png);
  }

  shrink(image: RgbImage, width: number, height: number): RgbImage {
    const out = Buffer.alloc(width * height * 4);
    const sx = image.width / width;
    const sy = image.height / height;
    for (let y = 0; y < height; y++) {
      const y0 = Math.floor(y * sy);
      const y1 = Math.max(y0 + 1, Math.min(image.height, Math.floor((y + 1) * sy)));
      for (let x = 0; x < width; x++) {
        const x0 = Math.floor(x * sx);
        const x1 = Math.max(x0 + 1, Math.min(image.width, Math.floor((x + 1) * sx)));
        let r = 0, g = 0, b = 0;
        for (let yy = y0; yy < y1; yy++) {
          for (let xx = x0, i = (yy * image.width + x0) * 4; xx < x1; xx++, i += 4) {
            r += image.rgba[i]!; g += image.rgba[i + 1]!; b += image.rgba[i + 2]!;
          }
        }
        const n = (y1 - y0) * (x1 - x0);
        const o = (y * width + x) * 4;
        out[o] = Math.round(r / n); out[o + 1] = Math.round(g / n); out[o + 2] = Math.round(b / n); out[o + 3] = 255;
      }
    }
    return { width, height, rgba: out };
  }
}
