/**
 * The run-time API (`mesh.setService`, `setEndpoints`, `setSplit`, `setPolicy`) as snapshot
 * updates: each takes the user's spelling, validates it with the same schemas as the options, and
 * returns the next snapshot (sharing every service it does not touch) or throws a ConfigError
 * naming its paths. Cross-references are checked when the snapshot is applied (validate.ts); an
 * update is live, so a split may name a service delivered a moment later (pending).
 */
import { z } from 'zod';
import { type EndpointInput, type SplitInput, endpointSchema, formatIssues, serviceSchema, splitSchema } from '../config.js';
import { ConfigError } from '../errors.js';
import { type Policy, loadPolicy } from '../policy/index.js';
import { type ServiceContext, endpointsOf, serviceFromConfig } from './from-options.js';
import type { MeshSnapshot, ServiceSnapshot } from './snapshot.js';

/** A snapshot minus what the control plane stamps on it (version, source). */
export type SnapshotDraft = Omit<MeshSnapshot, 'version' | 'source'>;

type Issue = { path: string; message: string };

function rejected(title: string, issues: Issue[]): ConfigError {
  return new ConfigError(`${title}:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, issues);
}

function parse<S extends z.ZodType>(schema: S, input: unknown, title: string, prefix: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw rejected(title, formatIssues(parsed.error.issues, input, schema as never).map((i) => ({ ...i, path: i.path === '(root)' ? prefix : `${prefix}.${i.path}` })));
}

function existing(s: MeshSnapshot, method: string, name: string): ServiceSnapshot {
  const svc = s.services.get(name);
  if (svc) return svc;
  throw new ConfigError(`${method}: "${name}" is not a mesh service; known: ${[...s.services.keys()].join(', ') || '(none)'}`, [
    { path: 'service', message: 'unknown service' },
  ]);
}

function withService(s: MeshSnapshot, name: string, svc: ServiceSnapshot | null): SnapshotDraft {
  const services = new Map(s.services);
  if (svc === null) services.delete(name);
  else services.set(name, svc);
  return { complete: false, inbound: s.inbound, services };
}

const serviceName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: lower-case letters, digits and "-", at most 63');

/** `mesh.setService(name, config | null)`: add or replace a service (options' spelling), or remove it. */
export function setService(s: MeshSnapshot, name: string, input: unknown, ctx: ServiceContext): SnapshotDraft {
  const title = `setService("${name}") rejected, services unchanged`;
  parse(serviceName, name, title, 'name');
  if (input === null) return withService(s, name, (existing(s, 'setService', name), null));
  const cfg = parse(serviceSchema, input, title, name);
  return withService(s, name, serviceFromConfig(name, cfg, ctx, name));
}

export function setEndpoints(s: MeshSnapshot, name: string, endpoints: EndpointInput[]): SnapshotDraft {
  const svc = existing(s, 'setEndpoints', name);
  const list = parse(z.array(endpointSchema), endpoints, `setEndpoints("${name}") rejected, endpoints unchanged`, 'endpoints');
  return withService(s, name, { ...svc, endpoints: endpointsOf(list, svc.identity) });
}

export function setSplit(s: MeshSnapshot, name: string, split: SplitInput | null): SnapshotDraft {
  const svc = existing(s, 'setSplit', name);
  if (split === null) {
    const { split: _drop, ...rest } = svc;
    return withService(s, name, rest);
  }
  const backends = parse(splitSchema, split, `setSplit("${name}") rejected, split unchanged`, 'split');
  return withService(s, name, { ...svc, split: backends });
}

/** `mesh.setPolicy`: a Policy from loadPolicy, or a document; throws PolicyError naming its paths. */
export function setPolicy(s: MeshSnapshot, input: unknown): SnapshotDraft {
  const policy: Policy = loadPolicy(input as Parameters<typeof loadPolicy>[0]);
  return { complete: s.complete, inbound: { ...s.inbound, policy }, services: s.services };
}

/** `mesh.setInboundMode`: STRICT ↔ PERMISSIVE; a default policy not set explicitly follows the mode. */
export function setInboundMode(s: MeshSnapshot, mode: unknown): SnapshotDraft {
  const m = parse(z.enum(['strict', 'permissive']), mode, 'setInboundMode rejected, mode unchanged', 'mode');
  const i = s.inbound;
  const defaultPolicy = i.defaultPolicyExplicit ? i.defaultPolicy : m === 'permissive' ? 'all-unauthenticated' : 'all-authenticated';
  return { complete: s.complete, inbound: { ...i, mode: m, defaultPolicy }, services: s.services };
}
