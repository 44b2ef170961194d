declare module 'jpeg-js' {
  interface RawImageData { width: number; height: number; data: Buffer | Uint8Array }
  export function encode(image: RawImageData, quality?: number): { width: number; height: number; data: Buffer };
  export function decode(jpeg: Buffer | Uint8Array, opts?: { useTArray?: boolean; formatAsRGBA?: boolean }): { width: number; height: number; data: Buffer };
  const _default: { encode: typeof encode; decode: typeof decode };
  export default _default;
}
