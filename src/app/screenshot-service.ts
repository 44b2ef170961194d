import { readFile, rm } from 'node:fs/promises';
import { qemuStep } from './qemu-step.js';
import type { ImageEncoder } from '../ports/image-encoder.js';
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
  async take(ref: string, opts: { format: 'jpeg' | 'png'; quality: number }): Promise<Screenshot> {
    const { vm, instance } = this.d.vms.liveInstance(ref);
    const file = this.d.layout.screendumpTemp(vm.id);
    try {
      await qemuStep(`screendump of '${vm.name}'`, () => instance.screendump(file));
      const image = this.d.images.fromPpm(await readFile(file));
      const data = opts.format === 'png' ? this.d.images.png(image) : this.d.images.jpeg(image, opts.quality);
      return { format: opts.format, width: image.width, height: image.height, data };
    } finally {
      await rm(file, { force: true });
    }
  }
}
