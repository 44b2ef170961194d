import { Type } from '@sinclair/typebox';
import { LIMITS } from '../../domain/vm.js';

export const ResizeDiskBody = Type.Object({
  sizeGB: Type.Integer({ minimum: 1, maximum: LIMITS.diskGBMax, description: 'New virtual size in GiB; must be larger than the current one' }),
}, { additionalProperties: false });

export const ScreenshotQuery = Type.Object({
  format: Type.Optional(Type.Union([Type.Literal('jpeg'), Type.Literal('png')], { default: 'jpeg' })),
  quality: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 80, description: 'JPEG quality' })),
}, { additionalProperties: false });

export const ScreenshotJson = Type.Object({
  format: Type.Union([Type.Literal('jpeg'), Type.Literal('png')]),
  width: Type.Integer(),
  height: Type.Integer(),
  data: Type.String({ description: 'The image, base64' }),
});
