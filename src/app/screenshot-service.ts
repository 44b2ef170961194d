import { readFile, rm } from 'node:fs/promises';
import { qemuStep } from './qemu-step.js';
import type { ImageEncoder, RgbImage } from '../ports/image-encoder.js';
import type { DataLayout } from './layout.js';
import type { VmService } from './vm-service.js';

export interface Screenshot {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  data: Buffer;
}

export class ScreenshotService {
  constructor(private readonly d: { vms: VmService; layout: DataLayout; images: ImageEncoder }) {}

  /** The VM's display as QEMU renders it (a VGA device with no window: works headless). */
  async take(ref: string, opts: { format: 'jpeg' | 'png'; quality: number; scale?: number; maxWidth?: number }): Promise<Screenshot> {
    const { vm, instance } = this.d.vms.liveInstance(ref);
    const file = this.d.layout.screendumpTemp(vm.id);
    try {
      await qemuStep(`screendump of '${vm.name}'`, () => instance.screendump(file));
      const image = this.fit(this.d.images.fromPpm(await readFile(file)), opts);
      const data = opts.format === 'png' ? this.d.images.png(image) : this.d.images.jpeg(image, opts.quality);
      return { format: opts.format, width: image.width, height: image.height, data };
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Agents read pixels at a cost: `scale` and `maxWidth` shrink the frame (never enlarge it). */
  private fit(image: RgbImage, opts: { scale?: number; maxWidth?: number }): RgbImage {
    let width = image.width * (opts.scale ?? 1);
    if (opts.maxWidth !== undefined) width = Math.min(width, opts.maxWidth);
    const w = Math.max(1, Math.round(width));
    if (w >= image.width) return image;
    const h = Math.max(1, Math.round((image.height * w) / image.width));
    return this.d.images.shrink(image, w, h);
  }
}
