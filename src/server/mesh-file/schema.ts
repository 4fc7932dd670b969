/**
 * The mesh file's schema (DESIGN.md "The mesh file"): the fixed keys trustDomain, services[]
 * {name, namespace, port, protocol, endpoints, split} and policies[] {file}, and a service's
 * traffic settings spelt exactly as createMesh's `outbound.services.<name>` spells them (the same
 * zod schemas: routes, timeout, retry, balancer, ewma, failureAccrual, connections, identity).
 * Strict everywhere: an unknown key is an error. Pure.
 */
import { z } from 'zod';
import { serviceSchema } from '../../config.js';
import { validateTrustDomain } from '../../identity/spiffe-id.js';
import { ExternalIssuerSchema } from '../ca/issuers.js';

/** A Kubernetes-style DNS label, as createMesh judges a service or namespace name. */
const dnsLabel = serviceSchema.shape.namespace.unwrap();

const trustDomain = z.string().superRefine((v, ctx) => {
  try {
    validateTrustDomain(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

export const PROTOCOLS = ['http', 'http2', 'grpc'] as const;
export type MeshProtocol = (typeof PROTOCOLS)[number];

/**
 * One service. Its traffic keys are createMesh's (`hostnames` aside: a control plane's clients
 * address a service by its Kubernetes names, `<name>.<namespace>.svc.<domain>:<port>`).
 */
export const meshServiceSchema = serviceSchema.omit({ hostnames: true, namespace: true }).extend({
  name: dnsLabel,
  namespace: dnsLabel.default('default'),
  port: z.number().int().min(1, 'must be a port from 1 to 65535').max(65535, 'must be a port from 1 to 65535'),
  protocol: z.enum(PROTOCOLS).default('http'),
});

const policyRefSchema = z
  .object({
    /** A policy file (YAML/JSON, as loadPolicy takes it), relative to the mesh file. */
    file: z.string().min(1, 'must name a file (relative to the mesh file)'),
  })
  .strict();

export const meshFileSchema = z
  .object({
    trustDomain: trustDomain.default('cluster.local'),
    services: z.array(meshServiceSchema).default([]),
    policies: z.array(policyRefSchema).default([]),
    /**
     * External token issuers the CA (and the ADS port) accept besides the control plane's own
     * tokens: an OIDC issuer's JWK Set file (relative to the mesh file) and how its claims map to
     * a namespace and service account (ca/issuers.ts).
     */
    tokenIssuers: z.array(ExternalIssuerSchema).default([]),
  })
  .strict();

export type MeshFileInput = z.input<typeof meshFileSchema>;
export type MeshFileConfig = z.output<typeof meshFileSchema>;
export type MeshServiceConfig = z.output<typeof meshServiceSchema>;
