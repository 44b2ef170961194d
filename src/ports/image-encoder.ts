export interface RgbImage {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel, row by row. */
  rgba: Buffer;
}

export interface ImageEncoder {
  /** Parses a binary PPM (P6, 8-bit), as QEMU's screendump writes it. */
  fromPpm(ppm: Buffer): RgbImage;
  jpeg(image: RgbImage, quality: number): Buffer;
  png(image: RgbImage): Buffer;
  /** A smaller copy (each target pixel the average of the source pixels it covers). */
  shrink(image: RgbImage, width: number, height: number): RgbImage;
}
