import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type TLSSocket } from 'node:tls';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { EXACT_ROUTING, type RouterSemantics, foldPathCase, trailingSlashTwin } from '../policy/equivalence.js';
import {
  type CompiledPolicy,
  type Decision,
  type DefaultPolicy,
  type NormalizedTarget,
  type Policy,
  type PolicyRequest,
  compilePolicy,
  loadPolicy,
  normalizeTarget,
} from '../policy/index.js';

/** Process-wide key under which a request's normalized target is kept (ESM and CJS copies share it). */
const kTarget = Symbol.for('sidecarless.target');

type TargetCarrier = IncomingMessage & { [kTarget]?: NormalizedTarget };

/**
 * Marks a socket whose request was malformed: it is answered 400 and closed, and nothing pipelined
 * after it on the same connection may reach the app (Node parses and emits such requests before the
 * socket is closed).
 */
const kClosing = Symbol.for('sidecarless.closing');

/**
 * Normalizes `req.url` once: a valid target is rewritten in place (so the app routes exactly what the
 * policy judges); a malformed one is left as sent and answered 400 by the gate. Idempotent.
 */
export function prepareTarget(req: IncomingMessage): NormalizedTarget {
  const r = req as TargetCarrier;
  const cached = r[kTarget];
  if (cached) return cached;
  const t = normalizeTarget(req.url ?? '', req.method);
  if (t.ok && t.target !== req.url && t.path !== '*') req.url = t.target;
  r[kTarget] = t;
  return t;
}

/** One line of the audit log: structured, for a pluggable sink. */
export interface AuditRecord {
  readonly time: string;
  readonly type: 'sidecarless.audit';
  readonly decision: 'allow' | 'deny';
  readonly rule: string;
  readonly audit: readonly string[];
  readonly peer: string | null;
  readonly sourceIp: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
}

export interface AuthzStats {
  allowed: number;
  denied: number;
  malformed: number;
  /** By deciding rule: `{ rule: { allow, deny } }`; audit rules under `audit`. */
  byRule: Record<string, { allow: number; deny: number; audit: number }>;
}

export interface PolicyGateOptions {
  defaultPolicy: DefaultPolicy;
  trustDomain: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  audit: (record: AuditRecord) => void;
  /** Told every decision (telemetry: the decisions metric, the request's span, denials). */
  onDecision?: (decision: Decision, req: IncomingMessage) => void;
}

const FORBIDDEN = 'Forbidden\n';
const BAD_REQUEST = 'Bad Request\n';

/**
 * Authorization before the app: normalize the target (400 when malformed), evaluate the compiled
 * policy against the verified peer (403 when denied). The compiled policy is swapped as one
 * reference: a request reads it once, so no request sees a mix of two versions.
 */
export class PolicyGate {
  readonly stats: AuthzStats = { allowed: 0, denied: 0, malformed: 0, byRule: {} };
  /** One reference per policy version: swapped whole, so a request never sees a mix. */
  #state: PolicyState;
  #version = 0;

  constructor(private readonly opts: PolicyGateOptions, policy?: unknown) {
    const p = policy === undefined ? loadPolicy({}) : toPolicy(policy);
    this.#state = { policy: p, compiled: this.#compile(p) };
  }

  #compile(policy: Policy): CompiledPolicy {
    return compilePolicy(policy, {
      defaultPolicy: this.opts.defaultPolicy,
      trustDomain: this.opts.trustDomain,
      namespace: this.opts.namespace,
      labels: this.opts.labels,
    });
  }

  /** Replaces the policy. Throws PolicyError (naming paths) and keeps the previous one when invalid. */
  set(policy: unknown): void {
    const p = toPolicy(policy);
    this.#state = { policy: p, compiled: this.#compile(p) };
    this.#version++;
  }

  get policy(): Policy {
    return this.#state.policy;
  }

  get version(): number {
    return this.#version;
  }

  /**
   * The pipeline's authorize step: returns the status sent when the request was refused.
   * `routing` says how the app's router compares paths: the request is allowed only if every path
   * that router treats as this one is allowed.
   */
  authorize(req: IncomingMessage, res: ServerResponse, peer: PeerIdentity | null, routing: RouterSemantics = EXACT_ROUTING): number | undefined {
    const closing = req.socket as unknown as { [kClosing]?: boolean };
    if (closing[kClosing]) {
      // Pipelined after a malformed request: its connection is closing after the 400. Never answered.
      res.shouldKeepAlive = false;
      return 400;
    }
    const t = prepareTarget(req);
    if (!t.ok || !validFraming(req) || missingHost(req)) {
      this.stats.malformed++;
      closing[kClosing] = true;
      res.shouldKeepAlive = false;
      respond(res, 400, BAD_REQUEST);
      return 400;
    }
    const socket = req.socket as TLSSocket;
    const host = t.authority ?? req.headers.host ?? '';
    const headers = req.headers;
    const state = this.#state;
    const request: PolicyRequest = {
      peer,
      sourceIp: socket.remoteAddress ?? '',
      method: req.method ?? '',
      path: t.path,
      host,
      port: socket.localPort ?? 0,
      ...(typeof socket.servername === 'string' && { sni: socket.servername }),
      header: (name) => {
        const v = headers[name];
        return Array.isArray(v) ? v.join(',') : v;
      },
    };
    let decision = state.compiled.evaluate(request);
    if (decision.allowed && (routing.caseInsensitive || routing.ignoreTrailingSlash)) {
      decision = this.#equivalents(state, request, routing) ?? decision;
    }
    this.#count(decision);
    this.opts.onDecision?.(decision, req);
    if (decision.audit.length > 0) {
      this.opts.audit({
        time: new Date().toISOString(),
        type: 'sidecarless.audit',
        decision: decision.result,
        rule: decision.rule,
        audit: decision.audit,
        peer: peer?.spiffeId ?? null,
        sourceIp: socket.remoteAddress ?? '',
        method: req.method ?? '',
        path: t.path,
        host,
      });
    }
    if (decision.allowed) return undefined;
    respond(res, 403, FORBIDDEN);
    return 403;
  }

  /** The first denial among the spellings the router routes alike (undefined: all allowed). */
  #equivalents(state: PolicyState, request: PolicyRequest, routing: RouterSemantics): Decision | undefined {
    const judge = (compiled: CompiledPolicy, path: string): Decision | undefined => {
      const d = compiled.evaluate({ ...request, path });
      return d.allowed ? undefined : d;
    };
    const path = request.path;
    const twin = routing.ignoreTrailingSlash ? trailingSlashTwin(path) : undefined;
    if (twin !== undefined) {
      const d = judge(state.compiled, twin);
      if (d) return d;
    }
    if (!routing.caseInsensitive) return undefined;
    state.folded ??= this.#compile(foldPathCase(state.policy));
    const lower = path.toLowerCase();
    const d = judge(state.folded, lower);
    if (d) return d;
    const lowerTwin = twin?.toLowerCase();
    return lowerTwin === undefined ? undefined : judge(state.folded, lowerTwin);
  }

  #count(d: Decision): void {
    if (d.allowed) this.stats.allowed++;
    else this.stats.denied++;
    const r = (this.stats.byRule[d.rule] ??= { allow: 0, deny: 0, audit: 0 });
    if (d.allowed) r.allow++;
    else r.deny++;
    for (const a of d.audit) (this.stats.byRule[a] ??= { allow: 0, deny: 0, audit: 0 }).audit++;
  }
}

interface PolicyState {
  readonly policy: Policy;
  readonly compiled: CompiledPolicy;
  /** The policy with lower-cased path patterns, compiled on first use by a case-insensitive router. */
  folded?: CompiledPolicy;
}

/**
 * HTTP/1.1 requires Host (RFC 9112 §3.2). Servers run with Node's own check off (it answers 400 but
 * still hands a request pipelined behind to the app), so the gate answers it and closes.
 */
function missingHost(req: IncomingMessage): boolean {
  return req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
}

/**
 * A request's Transfer-Encoding must end in `chunked` (RFC 9112 §6.3: otherwise 400 and close).
 * Node's parser refuses such a request only after its 'request' event, i.e. after the app started.
 */
function validFraming(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  return te === undefined || /(?:^|,)[ \t]*chunked[ \t]*$/i.test(te);
}

/** A Policy from loadPolicy, or a document (text, object, array) to load. */
function toPolicy(input: unknown): Policy {
  return loadPolicy(input as Parameters<typeof loadPolicy>[0]);
}

function respond(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
