/**
 * The servers a mesh protects, however they were built: `mesh.createServer`, a framework's server
 * built from `mesh.serverTlsOptions()` (adopted at its first connection, adoption.ts), the server
 * of a registered Fastify plugin, and — as a last resort, with a warning — a server the mesh only
 * learns about from a request that reached `mesh.express()`. Adopting a server = its certificate
 * rotated in place, every connection's peer verified at the handshake, every request event
 * guarded (server-guard.ts), first-request timeout armed.
 */
import { type Clock, systemClock } from '../clock.js';
import { type IncomingMessage, type Server as HttpServer } from 'node:http';
import { type Server, createServer as createHttpsServer } from 'node:https';
import { type Http2SecureServer, createSecureServer as createHttp2Server } from 'node:http2';
import { type Server as TlsServer, type TlsOptions } from 'node:tls';
import { type Logger } from '../logger.js';
import { type RouterSemantics } from '../policy/router-semantics.js';
import { HTTP1_ALPN, HTTP2_ALPN, type ServerTls } from '../tls/server-context.js';
import { MeshHttp2ServerRequest, MeshIncomingMessage, adoptServersOf, adoptingAlpn, refuseAll } from './adoption.js';
import { type InboundPipeline } from './pipeline.js';
import { guardOf, guardServer } from './server-guard.js';
import { http2Options } from './http2/settings.js';
import { guardHttp2Server, http2GuardOf } from './http2/stream-guard.js';
import { routingOfServer } from './router-kind.js';

export type RequestListener = (req: IncomingMessage, res: import('node:http').ServerResponse) => void;

export const HTTP2_PLAINTEXT =
  'an HTTP/2 server without TLS (http2.createServer, Fastify({ http2: true }) without `https`) cannot be served by the mesh ' +
  '(no plaintext, ever), so every connection to it is closed. Build it with http2.createSecureServer(mesh.serverTlsOptions({ http2: true }), app), ' +
  'mesh.createServer(app, { http2: true }) or Fastify({ http2: true, https: mesh.serverTlsOptions({ http2: true }) })';

/** What createServer and serverTlsOptions accept. */
export interface ServerOptions {
  /** An HTTP/2 server (node:http2 Http2SecureServer, ALPN h2 and http/1.1), judged stream by stream. */
  readonly http2?: boolean;
}

/**
 * Whether `server` is node:http2's server (it overrides the ALPN the mesh offers with `h2`, and
 * hands requests to 'stream' listeners that no request event of node:http carries).
 */
export function isHttp2Server(server: unknown): boolean {
  return typeof (server as { updateSettings?: unknown } | null)?.updateSettings === 'function';
}

const H2_ONLY: readonly string[] = Object.freeze(['h2']);

/**
 * Whether a node:http2 server serves HTTP/1.1 too (`allowHTTP1`, which node:http2 keeps in the
 * options it stores under a symbol described `options`; unknown → true, node:http2 then still
 * refuses HTTP/1.1 itself without allowHTTP1).
 */
function allowsHttp1(server: unknown): boolean {
  const s = server as Record<symbol, { allowHTTP1?: unknown } | undefined>;
  const key = Object.getOwnPropertySymbols(s).find((k) => k.description === 'options');
  const options = key ? s[key] : undefined;
  return options === undefined || typeof options !== 'object' ? true : options.allowHTTP1 === true;
}

/** node:http's default requestTimeout, kept on every server the mesh protects. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

export interface InboundServersOptions {
  firstRequestTimeoutMs: number;
  logger: Logger;
  /** Told the port of every protected server once it listens (an xDS control plane asks for that port's inbound Listener). */
  onPort?: (port: number) => void;
  /** Runs the first-request timers (default systemClock). */
  clock?: Clock;
}

export class InboundServers {
  /** Servers made by createServer (closed with the mesh). */
  readonly created = new Set<Server | Http2SecureServer>();
  #stopAdoption: (() => void) | undefined;
  readonly #warned = new WeakSet<object>();
  readonly #reporting = new WeakSet<object>();
  #warnedPlaintext = false;

  constructor(
    private readonly tls: ServerTls,
    private readonly pipeline: InboundPipeline,
    private readonly options: InboundServersOptions,
  ) {}

  /** TLS options for a server a framework builds; such a server is adopted at its first connection. */
  /**
   * `{ http2: true }`: options for `http2.createSecureServer(...)` and Fastify's `http2: true`
   * (ALPN h2 and http/1.1, allowHTTP1, the mesh's HTTP/2 limits: http2/settings.ts). Without it, a
   * node:http2 server built from them is judged the same way, with node:http2's own limits and ALPN.
   */
  serverTlsOptions(options: ServerOptions = {}): TlsOptions {
    this.#stopAdoption ??= adoptServersOf(this.tls.sessionIdContext, (server) => this.adopt(server as HttpServer));
    // Request classes that look at the server at its first request (adoption.ts), for node:http and
    // for node:http2's compat requests; ALPN chosen by a callback that looks at it at the handshake
    // (adoptingAlpn: node:tls refuses ALPNProtocols beside it). A node:http2 server built from the
    // plain options gets `h2` (and `http/1.1`, which node:http2 serves only with allowHTTP1).
    const { ALPNProtocols: offered, ...tls } = this.tls.options();
    const h1 = (offered ?? HTTP1_ALPN) as readonly string[];
    const classes = { IncomingMessage: MeshIncomingMessage, Http1IncomingMessage: MeshIncomingMessage, Http2ServerRequest: MeshHttp2ServerRequest };
    if (options.http2 === true) return { ...tls, ...classes, ...http2Options(), ALPNCallback: adoptingAlpn(() => HTTP2_ALPN) } as TlsOptions;
    return { ...tls, ...classes, ALPNCallback: adoptingAlpn((server) => (!isHttp2Server(server) ? h1 : allowsHttp1(server) ? HTTP2_ALPN : H2_ONLY)) } as TlsOptions;
  }

  /**
   * An https.Server with mutual TLS and the gate before every listener: `listener` (a function, an
   * Express app) and any listener added later (`server.on('request' | 'upgrade' | ...)`).
   */
  createServer(listener?: RequestListener, options?: { http2?: false }): Server;
  createServer(listener: RequestListener | undefined, options: ServerOptions): Server | Http2SecureServer;
  createServer(listener?: RequestListener, options: ServerOptions = {}): Server | Http2SecureServer {
    if (listener !== undefined && typeof listener !== 'function') {
      throw new TypeError('mesh.createServer(listener): the listener must be a function (a request handler or an Express app)');
    }
    if (options === null || typeof options !== 'object') throw new TypeError('mesh.createServer(listener, options): options must be an object such as { http2: true }');
    const server = options.http2 === true ? this.#createHttp2(listener) : listener ? createHttpsServer(this.tls.options(), listener) : createHttpsServer(this.tls.options());
    this.adopt(server as unknown as HttpServer);
    this.created.add(server);
    server.once('close', () => this.created.delete(server));
    return server;
  }

  #createHttp2(listener?: RequestListener): Http2SecureServer {
    const options = { ...this.tls.options(HTTP2_ALPN), ...http2Options() };
    return listener ? createHttp2Server(options, listener as never) : createHttp2Server(options);
  }

  /** Protects `server`; `declared`: the routing a framework plugin read from its instance. Idempotent. */
  adopt(server: HttpServer, declared?: RouterSemantics): void {
    const s = server as HttpServer & { setSecureContext?: unknown };
    const h2 = isHttp2Server(server);
    if (h2 && typeof s.setSecureContext !== 'function') {
      // Fail closed, loudly: never plaintext.
      refuseAll(server);
      this.#warnOnce(server, `sidecarless: ${HTTP2_PLAINTEXT}`, 'error');
      return;
    }
    if (typeof s.setSecureContext === 'function') this.tls.attach(server as unknown as TlsServer);
    const state = guardServer(server, this.pipeline, {
      firstRequestTimeoutMs: this.options.firstRequestTimeoutMs,
      clock: this.options.clock ?? systemClock,
      onUnsafe: (why) => this.#warnOnce(server, `sidecarless: ${why}`, 'error'),
    });
    if (declared) state.declared = declared;
    if (h2) this.#guardHttp2(server as unknown as Http2SecureServer, () => (state.declared ? { kind: 'known', routing: state.declared } : routingOfServer(server)));
    this.#reportPort(server);
    // A whole request must end in bounded time: Fastify sets node:http's requestTimeout to 0 (none),
    // which lets a peer trickle a body forever. node:http's own default is restored.
    if (server.requestTimeout === 0) server.requestTimeout = DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** Every stream of every session judged before its listeners (http2/stream-guard.ts). */
  #guardHttp2(server: Http2SecureServer, routing: Parameters<typeof guardHttp2Server>[1]['routing']): void {
    guardHttp2Server(server, {
      admit: (stream, headers, raw, r) => this.pipeline.admitStream(stream, headers, raw, r),
      within: (req, fn) => this.pipeline.within(req, fn),
      routing,
      onUnsafe: (why) => this.#warnOnce(server, `sidecarless: ${why}`, 'error'),
      onRapidReset: (c) => {
        this.pipeline.stats.rapidResetSessions++;
        this.#warnOnce(server, `sidecarless: an HTTP/2 client reset ${c.premature} of its first ${c.streams} streams (rapid reset, CVE-2023-44487): its session was closed with GOAWAY ENHANCE_YOUR_CALM (logged once per server; counted in mesh.stats().inbound.requests.rapidResetSessions)`, 'warn');
      },
      clock: this.options.clock ?? systemClock,
    });
  }

  /** A request reached the pipeline from a server the mesh had not adopted (its own TLS options). */
  unknownServer(server: unknown): void {
    if (!server || typeof server !== 'object' || guardOf(server)) return;
    this.#warnOnce(
      server,
      'sidecarless: a request arrived on a server the mesh had not adopted (not built from mesh.serverTlsOptions(), or its options changed): its connections were ' +
        'judged only at their first request. Build it with https.createServer(mesh.serverTlsOptions(), app) or mesh.createServer(app); ' +
        'the mesh now guards it and judges its new connections at the handshake.',
      'warn',
    );
    this.adopt(server as HttpServer);
  }

  /** A request arrived over plaintext HTTP at mesh.express() (refused). */
  plaintext(): void {
    if (this.#warnedPlaintext) return;
    this.#warnedPlaintext = true;
    this.options.logger.error(
      'sidecarless: a request reached the mesh over plaintext HTTP and was refused (the mesh never serves without TLS). ' +
        'Serve the app with https.createServer(mesh.serverTlsOptions(), app) or mesh.createServer(app).',
    );
  }

  /** Tells onPort the server's port now if it listens, and at every later 'listening'. */
  #reportPort(server: HttpServer): void {
    const onPort = this.options.onPort;
    if (!onPort || this.#reporting.has(server)) return;
    this.#reporting.add(server);
    const report = () => {
      const a = server.address();
      if (a !== null && typeof a === 'object') onPort(a.port);
    };
    if (server.listening) report();
    server.on('listening', report);
  }

  #warnOnce(server: object, message: string, level: 'warn' | 'error'): void {
    if (this.#warned.has(server)) return;
    this.#warned.add(server);
    this.options.logger[level](message);
  }

  /** Closes the servers createServer made; later servers built from serverTlsOptions() are refused. */
  async close(): Promise<void> {
    this.#stopAdoption?.();
    await Promise.all(
      [...this.created].map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            if ('closeIdleConnections' in s) s.closeIdleConnections();
            // h2 sessions: GOAWAY, then closed once their streams finish.
            for (const session of http2GuardOf(s)?.sessions ?? []) session.close();
          }),
      ),
    );
  }
}
