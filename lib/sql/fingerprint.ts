/**
 * The fingerprint hash.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * FNV-1a, 64-bit, over the UTF-8 bytes of `text`, as 16 lower-case hex digits. Chosen because it
 * is tiny, has no dependencies, needs no async API (unlike `crypto.subtle`), and is easy to
 * reproduce in any language that wants to match pgpilot's fingerprints.
 *
 * @example
 * ```ts
 * fnv1a64("");  // "cbf29ce484222325"
 * fnv1a64("a"); // "af63dc4c8601ec8c"
 * ```
 */
export function fnv1a64(text: string): string {
  const bytes = encoder.encode(text);
  // The 64-bit state as two 32-bit halves: JavaScript numbers are exact only up to 2^53.
  let high = 0xcbf29ce4;
  let low = 0x84222325;
  for (let index = 0; index < bytes.length; index += 1) {
    low ^= bytes[index]!;
    // Multiply by the prime 2^40 + 0x1b3: low * 0x1b3 stays below 2^41, exact in a double.
    const lowProduct = (low >>> 0) * 0x1b3;
    const carry = Math.floor(lowProduct / 0x100000000);
    high = (high * 0x1b3 + carry + (low << 8)) >>> 0;
    low = lowProduct >>> 0;
  }
  return hex8(high) + hex8(low);
}

function hex8(value: number): string {
  return (value >>> 0).toString(16).padStart(8, "0");
}
