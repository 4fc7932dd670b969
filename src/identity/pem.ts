/** PEM <-> DER. Pure; tolerant of CRLF and text around the blocks, strict about base64. */

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

export function decodePem(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new Error(`PEM block "${m[1]}" has invalid base64`);
    out.push({ label: m[1]!, der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** All CERTIFICATE blocks, in order. */
export function pemToCertDers(text: string): Buffer[] {
  return decodePem(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

export function derToPem(der: Uint8Array | ArrayBuffer, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
