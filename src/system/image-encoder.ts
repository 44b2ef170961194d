import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { ImageEncoder, RgbImage } from '../ports/image-encoder.js';

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
    return jpeg.encode({ width: image.width, height: image.height, data: image.rgba }, quality).data;
  }

  png(image: RgbImage): Buffer {
    const png = new PNG({ width: image.width, height: image.height });
    image.rgba.copy(png.data);
    return PNG.sync.write(png);
  }
}
