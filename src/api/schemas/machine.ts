import { Type } from '@sinclair/typebox';
import { LIMITS } from '../../domain/vm.js';

export const ResizeDiskBody = Type.Object({
  sizeGB: Type.Integer({ minimum: 1, maximum: LIMITS.diskGBMax, description: 'New virtual size in GiB; must be larger than the current one' }),
}, { additionalProperties: false });

export const ScreenshotQuery = Type.Object({
  format: Type.Optional(Type.Union([Type.Literal('jpeg'), Type.Literal('png')], { default: 'jpeg' })),
  quality: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 80, description: 'JPEG quality' })),
  scale: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Shrink by this factor (0.5: half the width and height); smaller images for agents' })),
  maxWidth: Type.Optional(Type.Integer({ minimum: 16, maximum: 16384, description: 'Shrink (never enlarge) to at most this width, keeping the aspect ratio; applied after `scale`' })),
}, { additionalProperties: false });

export const ScreenshotJson = Type.Object({
  format: Type.Union([Type.Literal('jpeg'), Type.Literal('png')]),
  width: Type.Integer(),
  height: Type.Integer(),
  data: Type.String({ description: 'The image, base64' }),
});
