/**
 * The zod schema of the native policy (model.ts): loaded when a policy with rules or servers is
 * first parsed, not at import (cold start, issue 14; src/policy/zod.ts).
 */
import { z } from 'zod';
import { parseCidr } from './cidr.js';
import { formatPath, policyError, type PolicyIssue } from './issues.js';
import { identityPatternProblem } from './identity-patterns.js';
import { checkStarPattern } from './patterns.js';
import { readableIssues } from '../zod-issues.js';
import { DEFAULT_POLICIES, type DefaultPolicy, checkPathPattern } from './basics.js';

const nonEmpty = (s: z.ZodType) => z.array(s).min(1, 'must not be empty (omit the field to match anything)');

const starPattern = z.string().superRefine((v, ctx) => {
  const e = checkStarPattern(v);
  if (e) ctx.addIssue({ code: 'custom', message: e });
});

const identity = z.string().superRefine((v, ctx) => {
  const e = checkStarPattern(v);
  if (e) return ctx.addIssue({ code: 'custom', message: e });
  const why = identityPatternProblem(v);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

const trustDomain = z.string().regex(/^[a-z0-9._-]+$/, 'must be a trust domain: lower-case letters, digits, ".", "-", "_"');

const serviceAccount = z.string().regex(/^[^/*\s]+\/([^/*\s]+|\*)$/, 'must be "namespace/serviceAccount" (serviceAccount may be "*")');

const cidr = z.string().superRefine((v, ctx) => {
  const r = parseCidr(v);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

const method = z.string().superRefine((v, ctx) => {
  if (v === '*') return;
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) || v.includes('*')) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not an HTTP method (wildcards other than "*" are not supported)` });
  }
});

const pathPattern = z.string().superRefine((v, ctx) => {
  const e = checkPathPattern(v);
  if (e) ctx.addIssue({ code: 'custom', message: e });
});

const host = z.string().superRefine((v, ctx) => {
  const e = checkStarPattern(v);
  if (e) return ctx.addIssue({ code: 'custom', message: e });
  if (/:[0-9]*$/.test(v) && !v.endsWith(']')) {
    ctx.addIssue({ code: 'custom', message: `"${v}": hosts are matched without their port; use "ports" for the port` });
  }
});

const port = z.number().int().min(1).max(65535);
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name');
const headerMap = z.record(headerName, nonEmpty(starPattern));

const sourceShape = {
  identities: nonEmpty(identity).optional(),
  notIdentities: nonEmpty(identity).optional(),
  trustDomains: nonEmpty(trustDomain).optional(),
  notTrustDomains: nonEmpty(trustDomain).optional(),
  namespaces: nonEmpty(starPattern).optional(),
  notNamespaces: nonEmpty(starPattern).optional(),
  serviceAccounts: nonEmpty(serviceAccount).optional(),
  notServiceAccounts: nonEmpty(serviceAccount).optional(),
  unauthenticated: z.boolean().optional(),
  ipBlocks: nonEmpty(cidr).optional(),
  notIpBlocks: nonEmpty(cidr).optional(),
};
const operationShape = {
  methods: nonEmpty(method).optional(),
  notMethods: nonEmpty(method).optional(),
  paths: nonEmpty(pathPattern).optional(),
  notPaths: nonEmpty(pathPattern).optional(),
  hosts: nonEmpty(host).optional(),
  notHosts: nonEmpty(host).optional(),
  ports: nonEmpty(port).optional(),
  notPorts: nonEmpty(port).optional(),
  headers: headerMap.optional(),
  notHeaders: headerMap.optional(),
  sni: nonEmpty(starPattern).optional(),
  notSni: nonEmpty(starPattern).optional(),
};

const SourceSchema = z.strictObject(sourceShape);
const OperationSchema = z.strictObject(operationShape);
const ConditionSchema = z.strictObject({ ...sourceShape, ...operationShape });

const oneOrMany = (s: z.ZodType) =>
  z.preprocess((v) => (v === undefined || Array.isArray(v) ? v : [v]), z.array(s).min(1, 'must not be empty (omit the field to match anything)'));

/** Kubernetes label selector schema (shared by the native form and the importers). */
export const LabelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string().min(1),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

const defaultPolicy = z.enum(DEFAULT_POLICIES as unknown as [DefaultPolicy, ...DefaultPolicy[]]);

const RuleSchema = z.strictObject({
  name: z.string().min(1).optional(),
  action: z.enum(['allow', 'deny', 'audit']),
  from: oneOrMany(SourceSchema).optional(),
  to: oneOrMany(OperationSchema).optional(),
  when: oneOrMany(ConditionSchema).optional(),
  matchNothing: z.boolean().optional(),
  namespace: z.string().min(1).optional(),
  selector: LabelSelectorSchema.optional(),
});

const ServerRouteSchema = z.strictObject({
  ...operationShape,
  route: z.string().min(1).optional(),
  rank: z.number().int().min(0).optional(),
});

const ServerRuleSchema = z.strictObject({ ...RuleSchema.shape, route: z.string().min(1).optional() });

const ServerSchema = z.strictObject({
  name: z.string().min(1),
  ports: nonEmpty(port),
  accessPolicy: defaultPolicy.optional(),
  routes: z.array(ServerRouteSchema).optional(),
  rules: z.array(ServerRuleSchema).optional(),
  namespace: z.string().min(1).optional(),
  selector: LabelSelectorSchema.optional(),
});

/** The zod schema of the native document (`apiVersion`/`kind` optional: `sidecarless.dev/v1`, `Policy`). */
export const PolicySchema = z.strictObject({
  apiVersion: z.literal('sidecarless.dev/v1').optional(),
  kind: z.literal('Policy').optional(),
  rules: z.array(RuleSchema).optional(),
  servers: z.array(ServerSchema).optional(),
});

/** The native document as written (before canonicalization). */
export type PolicyInput = z.input<typeof PolicySchema>;

/** Readable issues (see zod-issues.ts): what was given, what would be right, the closest known field. */
function zodIssues(err: z.ZodError, input: unknown): PolicyIssue[] {
  return readableIssues(err.issues, input, PolicySchema, { noun: 'field' }).map((i) => ({ path: formatPath(i.path), message: i.message }));
}

export type RawRule = z.output<typeof RuleSchema> & { route?: string };

/**
 * The native document, validated: zod's output, or a PolicyError naming every problem.
 * @throws PolicyError
 */
export function parseNative(value: unknown): z.output<typeof PolicySchema> {
  const r = PolicySchema.safeParse(value);
  if (!r.success) throw policyError(zodIssues(r.error, value));
  return r.data;
}
