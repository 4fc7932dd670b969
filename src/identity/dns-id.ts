import { DnsIdentityError } from '../errors.js';
import { printable } from './peer-text.js';

/**
 * DNS-like identities, as Linkerd issues them: a leaf certificate whose one DNS SAN names the
 * workload, `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<trust-domain>`, and no URI SAN
 * (linkerd2 `controller/identity/domain.go`). The grammar is strict lower-case RFC 1123: labels of
 * 1–63 characters from `a-z 0-9 -`, never starting or ending with `-`; the whole name ≤ 253
 * characters; at least two labels (a bare label such as `localhost` names no workload); no
 * trailing dot, no empty label, no wildcard, no Unicode (an IDN appears as its ASCII `xn--` form,
 * which is just a label). Pure.
 */
export interface DnsIdentity {
  readonly kind: 'dns';
  /** The name, as given (it is canonical: lower case, no trailing dot). */
  readonly name: string;
  /** The same as `name`: what messages, policies and metrics print. */
  readonly id: string;
  /** Linkerd's trust domain (`cluster.local`), when the name has the Linkerd shape. */
  readonly trustDomain?: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  /** The namespace Linkerd's control plane runs in (`linkerd`), when the name has the Linkerd shape. */
  readonly controlNamespace?: string;
  /** `identity.<linkerd-ns>.<trust-domain>`, when the name has the Linkerd shape. */
  readonly identityDomain?: string;
}

export const MAX_DNS_NAME_LENGTH = 253;
export const MAX_DNS_LABEL_LENGTH = 63;

const LDH = (() => {
  const t = new Uint8Array(128);
  for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789-') t[c.charCodeAt(0)] = 1;
  return t;
})();

function describeChar(code: number): string {
  return code < 0x20 || code > 0x7e ? `\\u${code.toString(16).padStart(4, '0')}` : JSON.stringify(String.fromCharCode(code));
}

function hintFor(code: number): string {
  if (code >= 0x41 && code <= 0x5a) return ' (DNS-like identities are lower case)';
  if (code === 0x2a) return ' (a wildcard is a policy pattern, not an identity)';
  if (code >= 0x80) return ' (write an internationalized name in its ASCII xn-- form)';
  return '';
}

/**
 * Checks `name` against the grammar and returns it; throws DnsIdentityError saying what is wrong
 * (the name is shown escaped: it may come from a peer's certificate).
 */
export function validateDnsName(name: string, what = 'DNS-like identity'): string {
  return checkName(name, what, 2);
}

/**
 * Checks the suffix of a label-wise `*.` pattern: the grammar with one label or more (Linkerd's
 * MeshTLSAuthentication suffix `["local"]` is `*.local`).
 */
export function validateDnsSuffix(name: string): string {
  return checkName(name, 'DNS suffix', 1);
}

/** The grammar, with at least `minLabels` labels (1 for the parts of a name: a namespace, a trust domain). */
function checkName(name: string, what: string, minLabels: 1 | 2): string {
  if (typeof name !== 'string') throw new DnsIdentityError(`a ${what} must be a string`);
  if (name.length === 0) throw new DnsIdentityError(`the ${what} is empty`);
  const shown = printable(name, 300);
  if (name.length > MAX_DNS_NAME_LENGTH) throw new DnsIdentityError(`the ${what} "${shown}" is ${name.length} characters, longer than the ${MAX_DNS_NAME_LENGTH} allowed`);
  if (name.endsWith('.')) throw new DnsIdentityError(`the ${what} "${shown}" ends with a dot: write it without the trailing dot`);
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const len = i - start;
      if (len === 0) throw new DnsIdentityError(`the ${what} "${shown}" has an empty label at ${start}`);
      if (len > MAX_DNS_LABEL_LENGTH) throw new DnsIdentityError(`the ${what} "${shown}" has a label of ${len} characters, longer than the ${MAX_DNS_LABEL_LENGTH} allowed`);
      if (name.charCodeAt(start) === 0x2d || name.charCodeAt(i - 1) === 0x2d) {
        throw new DnsIdentityError(`the ${what} "${shown}" has a label that starts or ends with "-"`);
      }
      start = i + 1;
      continue;
    }
    if (c >= 128 || LDH[c] !== 1) throw new DnsIdentityError(`the ${what} "${shown}" has the invalid character ${describeChar(c)} at ${i}${hintFor(c)}`);
  }
  if (minLabels === 2 && !name.includes('.')) throw new DnsIdentityError(`the ${what} "${shown}" is a single label: a DNS-like identity has at least two (name.domain)`);
  return name;
}

/** Whether `name` is a valid DNS-like identity (no throw). */
export function isDnsName(name: string): boolean {
  try {
    validateDnsName(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a DNS-like identity; the Linkerd parts are filled when the name has the shape
 * `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<trust-domain>` (trust domain of one or more labels).
 *
 * The shape is ambiguous from the string alone: a Kubernetes service account name may hold dots,
 * so Linkerd may issue `a.victim.serviceaccount.identity.x.y.attacker.serviceaccount.identity.linkerd.cluster.local`
 * to service account `a.victim.serviceaccount.identity.x.y` of namespace `attacker`. Reading the
 * first `serviceaccount.identity` pair would report namespace `victim`. So:
 * - with `identityDomain` (the domain whose anchors verified the leaf), the parts are read relative
 *   to it exactly: the name must be `<sa>.<ns>.serviceaccount.<identityDomain>` (the namespace one
 *   label, the service account the rest), else no parts;
 * - without it, the LAST `serviceaccount.identity` pair is used (the one the issuer appended).
 */
export function parseDnsIdentity(name: string, identityDomain?: string): DnsIdentity {
  validateDnsName(name);
  const parts = identityDomain === undefined ? partsByLastPair(name) : partsInDomain(name, identityDomain);
  if (parts === undefined) return Object.freeze({ kind: 'dns', name, id: name });
  return Object.freeze({ kind: 'dns', name, id: name, ...parts });
}

type LinkerdParts = Pick<DnsIdentity, 'serviceAccount' | 'namespace' | 'controlNamespace' | 'trustDomain' | 'identityDomain'>;

function partsByLastPair(name: string): LinkerdParts | undefined {
  const labels = name.split('.');
  for (let i = labels.length - 4; i >= 2; i--) {
    if (labels[i] === 'serviceaccount' && labels[i + 1] === 'identity') {
      return {
        serviceAccount: labels.slice(0, i - 1).join('.'),
        namespace: labels[i - 1]!,
        controlNamespace: labels[i + 2]!,
        trustDomain: labels.slice(i + 3).join('.'),
        identityDomain: labels.slice(i + 1).join('.'),
      };
    }
  }
  return undefined;
}

function partsInDomain(name: string, identityDomain: string): LinkerdParts | undefined {
  if (!isUnderDomain(name, identityDomain)) return undefined;
  const domain = identityDomain.split('.');
  if (domain.length < 3 || domain[0] !== 'identity') return undefined;
  const prefix = name.slice(0, name.length - identityDomain.length - 1).split('.');
  if (prefix.length < 3 || prefix[prefix.length - 1] !== 'serviceaccount') return undefined;
  return {
    serviceAccount: prefix.slice(0, -2).join('.'),
    namespace: prefix[prefix.length - 2]!,
    controlNamespace: domain[1]!,
    trustDomain: domain.slice(2).join('.'),
    identityDomain,
  };
}

export interface LinkerdIdentityParts {
  readonly serviceAccount: string;
  readonly namespace: string;
  /** Default `linkerd`. */
  readonly controlNamespace?: string;
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
}

function label(value: string, what: string): string {
  checkName(value, what, 1);
  if (value.includes('.')) throw new DnsIdentityError(`the ${what} "${printable(value)}" must be one DNS label (no dots) in a Linkerd identity`);
  return value;
}

/** `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<trust-domain>`, each part checked. */
export function linkerdIdentityName(p: LinkerdIdentityParts): string {
  const sa = label(p.serviceAccount, 'service account');
  const ns = label(p.namespace, 'namespace');
  const lns = label(p.controlNamespace ?? 'linkerd', 'Linkerd control-plane namespace');
  const td = checkName(p.trustDomain ?? 'cluster.local', 'trust domain', 1);
  return validateDnsName(`${sa}.${ns}.serviceaccount.${linkerdIdentityDomain(lns, td)}`);
}

/** `identity.<linkerd-ns>.<trust-domain>`: the domain every Linkerd workload name ends in. */
export function linkerdIdentityDomain(controlNamespace = 'linkerd', trustDomain = 'cluster.local'): string {
  return validateDnsName(`identity.${label(controlNamespace, 'Linkerd control-plane namespace')}.${trustDomain}`, 'identity domain');
}

export const DNS_BUNDLE_PREFIX = 'dns:';

/**
 * The BundleSet key under which the trust anchors of an identity domain live
 * (`dns:identity.linkerd.cluster.local`). It can never collide with a SPIFFE trust domain (`:` is
 * not allowed in one).
 */
export function dnsBundleKey(identityDomain: string): string {
  return DNS_BUNDLE_PREFIX + validateDnsName(identityDomain, 'identity domain');
}

/** The identity domain of a BundleSet key, or undefined when the key is a SPIFFE trust domain. */
export function identityDomainOfKey(key: string): string | undefined {
  return key.startsWith(DNS_BUNDLE_PREFIX) ? key.slice(DNS_BUNDLE_PREFIX.length) : undefined;
}

/** Whether `name` lies under `domain`, label-wise: `x.` + domain (never the domain itself, never `xdomain`). */
export function isUnderDomain(name: string, domain: string): boolean {
  return name.length > domain.length + 1 && name.endsWith(domain) && name.charCodeAt(name.length - domain.length - 1) === 0x2e;
}

/**
 * Of the identity domains in `keys` (BundleSet keys), the longest that `name` lies under
 * label-wise, or undefined: a DNS-like leaf verifies against that domain's anchors only.
 */
export function identityDomainFor(name: string, keys: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const key of keys) {
    const domain = identityDomainOfKey(key);
    if (domain !== undefined && isUnderDomain(name, domain) && (best === undefined || domain.length > best.length)) best = domain;
  }
  return best;
}

/** Whether a BundleSet holds any DNS identity domain. */
export function hasDnsBundles(keys: Iterable<string>): boolean {
  for (const key of keys) if (key.startsWith(DNS_BUNDLE_PREFIX)) return true;
  return false;
}
