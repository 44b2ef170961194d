import { Type, type Static } from '@sinclair/typebox';

export const QemuLogQuery = Type.Object({
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'Byte offset to read from (the `size` of an earlier answer); default: the last maxBytes' })),
  maxBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1048576, default: 65536, description: 'At most this many bytes' })),
}, { additionalProperties: false });
export type QemuLogQuery = Static<typeof QemuLogQuery>;

export const QemuLogChunk = Type.Object({
  size: Type.Integer({ description: 'The log\'s size now: the `since` of the next read' }),
  from: Type.Integer({ description: 'Byte offset of the first byte of text' }),
  to: Type.Integer({ description: 'Byte offset after the last byte of text' }),
  text: Type.String({ description: 'The bytes as UTF-8' }),
});
