/** Hex text to bytes, for `sha256:<hex>` arguments (already checked to be 64 lowercase hex digits). */
export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}
