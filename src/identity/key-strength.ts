import { OID_DSA, OID_EC_PUBLIC_KEY, OID_RSA, OID_RSA_PSS, type PublicKeyInfo } from './der.js';

/**
 * The key-strength floor (NIST SP 800-131A), for leaves and CAs alike: RSA of at least 2048 bits,
 * ECDSA on P-256 or P-384, or Ed25519. Everything else is refused: DSA, RSA below 2048 bits, ECDSA
 * on any other curve (P-192, P-224, secp256k1, P-521, brainpool…) or with explicit curve
 * parameters (which let a certificate define its own curve: CVE-2020-0601), Ed448, and any
 * algorithm not named here. An allow-list, so an algorithm nobody thought about fails closed.
 * Pure: no I/O.
 */
export const MIN_RSA_BITS = 2048;

/** The smallest RSA public exponent taken (CA/Browser Forum baseline: odd, at least 2^16 + 1). */
export const MIN_RSA_EXPONENT = 65537n;

/** An RSA public exponent that is odd and at least 65537. Absent (not read): refused. */
function goodExponent(e: bigint | undefined): boolean {
  return e !== undefined && e >= MIN_RSA_EXPONENT && e % 2n === 1n;
}

/** The rule in words, for error messages. */
export const KEY_STRENGTH_RULE = `RSA ≥ ${MIN_RSA_BITS} bits, ECDSA P-256/P-384 or Ed25519`;

const OID_ED25519 = '1.3.101.112';
const OID_ED448 = '1.3.101.113';

const CURVES: Record<string, { name: string; allowed: boolean }> = {
  '1.2.840.10045.3.1.7': { name: 'P-256', allowed: true },
  '1.3.132.0.34': { name: 'P-384', allowed: true },
  '1.3.132.0.35': { name: 'P-521', allowed: false },
  '1.2.840.10045.3.1.1': { name: 'P-192', allowed: false },
  '1.3.132.0.33': { name: 'P-224', allowed: false },
  '1.3.132.0.10': { name: 'secp256k1', allowed: false },
};

/** A key in words: "RSA 1024 bits", "ECDSA P-224", "DSA 2048 bits", "Ed25519", "unknown algorithm 1.2.3.4". */
export function describeKey(k: PublicKeyInfo): string {
  switch (k.algorithm) {
    case OID_RSA:
      return `RSA ${k.bits} bits`;
    case OID_RSA_PSS:
      return `RSA-PSS ${k.bits} bits`;
    case OID_DSA:
      return k.bits === undefined ? 'DSA' : `DSA ${k.bits} bits`;
    case OID_EC_PUBLIC_KEY:
      if (k.curve === 'explicit') return 'ECDSA with explicit (or missing) curve parameters';
      return `ECDSA ${CURVES[k.curve ?? '']?.name ?? `on curve ${k.curve}`}`;
    case OID_ED25519:
      return 'Ed25519';
    case OID_ED448:
      return 'Ed448';
  }
  return `unknown algorithm ${k.algorithm}`;
}

/** True when the key meets the floor. */
export function isStrongKey(k: PublicKeyInfo): boolean {
  switch (k.algorithm) {
    case OID_RSA:
    case OID_RSA_PSS:
      return (k.bits ?? 0) >= MIN_RSA_BITS && goodExponent(k.exponent);
    case OID_EC_PUBLIC_KEY:
      return CURVES[k.curve ?? '']?.allowed === true;
    case OID_ED25519:
      return true;
  }
  return false;
}

/**
 * Why a certificate's key is refused, as one sentence (`role` names the certificate, e.g.
 * "the leaf certificate of spiffe://td/x"), or undefined when the key meets the floor.
 */
export function weakKeyReason(k: PublicKeyInfo, role: string): string | undefined {
  if (isStrongKey(k)) return undefined;
  if ((k.algorithm === OID_RSA || k.algorithm === OID_RSA_PSS) && (k.bits ?? 0) >= MIN_RSA_BITS) {
    return `${role} has an RSA key whose public exponent is ${k.exponent}; sidecarless requires an odd exponent of at least ${MIN_RSA_EXPONENT} (with 1 anyone can forge its signatures; small or even ones are weak or broken)`;
  }
  return `${role} has a weak or unsupported key (${describeKey(k)}); sidecarless requires ${KEY_STRENGTH_RULE} (DSA and RSA below ${MIN_RSA_BITS} bits are refused, in leaves and CAs alike)`;
}
