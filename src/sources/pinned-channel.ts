/**
 * A grpc-js channel to a control plane (istiod's CA, its ADS stream, Linkerd's destination and
 * policy services), shared by the Istio CA issuer, the ADS transport and the Linkerd streams:
 *
 * - TLS only, whose one trust anchor is the pinned `root` file (never the system roots, never
 *   plaintext); the name checked is the address's host (`istiod.istio-system.svc`), or `serverName`.
 *   The root file is read by the caller for every call or stream (`readRoot`) and a changed file
 *   re-dials, so a rotated root-cert.pem is picked up.
 * - Call metadata (`callMetadata`): `authorization: Bearer <token>`, the token read again for every
 *   call (a file is rotated in place by the kubelet), and `ClusterID` when set. grpc-js sends
 *   metadata only on a connection whose server certificate verified: the token never reaches an
 *   unverified server.
 * - Optionally a client certificate (mutual TLS, as Linkerd's controllers require): a changed one
 *   re-dials like a changed root.
 * - Its own connections (`grpc.use_local_subchannel_pool`), closed with it, a TLS handshake in
 *   progress included.
 */
import { createSecureContext } from 'node:tls';
import { isIP, type Socket } from 'node:net';
import type { ChannelCredentials, Client, Metadata } from '@grpc/grpc-js';
import { ConfigError } from '../errors.js';
import { parseCertificate } from '../identity/certificate.js';
import { pemToCertDers } from '../identity/pem.js';
import { type Grpc } from './grpc.js';
import { type TokenSpec, readToken } from './issuers/bearer-token.js';
import { readSmallFile } from './issuers/small-file.js';

/** A root file holds a few certificates (two during a root rotation); far more is not one. */
const MAX_ROOT_BYTES = 1 << 20;

export interface PinnedChannelOptions {
  /** `host:port`: istiod.istio-system.svc:15012. */
  readonly address: string;
  /**
   * The name the server's certificate must carry; default the address's host. Set it when the
   * address is an IP address (a test, a bench) and the certificate names istiod.istio-system.svc.
   */
  readonly serverName?: string;
  /** Largest message taken from the server. */
  readonly maxReceiveBytes: number;
  /** More grpc-js channel options (the Linkerd streams bound grpc-js's own reconnect backoff). */
  readonly channelOptions?: Readonly<Record<string, number | string>>;
}

/** The workload's certificate a mutual-TLS channel presents (Linkerd's destination and policy services ask for it). */
export interface ClientCertificate {
  readonly keyPem: string;
  /** The leaf first, then its intermediates. */
  readonly certChainPem: string;
}

/** The host of `host:port` (IPv6 in brackets), for the TLS name check. Throws ConfigError. */
export function hostOf(address: string): string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):\d+$/.exec(address);
  if (!m) {
    const message = 'must be host:port (IPv6 as [::1]:port), e.g. istiod.istio-system.svc:15012';
    throw new ConfigError(`the control-plane address "${address}" ${message}`, [{ path: 'address', message }]);
  }
  return (m[1] ?? m[2])!;
}

/** The pinned root file: one or more PEM certificates. */
export async function readRoot(path: string): Promise<string> {
  let text: string;
  try {
    text = await readSmallFile(path, MAX_ROOT_BYTES);
  } catch (e) {
    throw new Error(`cannot read the control-plane root ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (e as Error).message}. Mount the CA's root there (istiod: ConfigMap istio-ca-root-cert) or fix controlPlane.root`, { cause: e });
  }
  let count: number;
  try {
    count = pemToCertDers(text).map(parseCertificate).length;
  } catch (e) {
    throw new Error(`the control-plane root ${path} holds a certificate that cannot be parsed: ${(e as Error).message}`, { cause: e });
  }
  if (count === 0) throw new Error(`the control-plane root ${path} holds no PEM CERTIFICATE block`);
  return text;
}

/** The metadata of one call: the bearer token read now, and ClusterID when set. */
export async function callMetadata(grpc: Grpc, token: TokenSpec, clusterId: string | undefined, env?: NodeJS.ProcessEnv): Promise<Metadata> {
  const value = await readToken(token, env);
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${value}`);
  if (clusterId !== undefined) md.set('ClusterID', clusterId);
  return md;
}

/** One grpc-js client over TLS pinned to the root it was made with; made again when the root changes. */
export class PinnedChannel {
  #client: Client | undefined;
  #rootPem: string | undefined;
  /** The client's TCP sockets, a TLS handshake in progress included (grpc-js does not end those on close). */
  #sockets = new Set<Socket>();
  readonly #host: string;

  constructor(private readonly opts: PinnedChannelOptions) {
    this.#host = hostOf(opts.address);
  }

  /**
   * The client for `rootPem` (and, for mutual TLS, the client certificate `clientCert`): the current
   * one, or a new one (the old closed) when the root or the certificate changed.
   */
  client(grpc: Grpc, rootPem: string, clientCert?: ClientCertificate): Client {
    const key = clientCert ? `${rootPem}\0${clientCert.certChainPem}\0${clientCert.keyPem}` : rootPem;
    if (this.#client && this.#rootPem === key) return this.#client;
    this.reset();
    // `ca` given: Node trusts these roots only, not its built-in list.
    const tls = { ca: rootPem, minVersion: 'TLSv1.2' as const, ...(clientCert && { key: clientCert.keyPem, cert: clientCert.certChainPem }) };
    const creds = grpc.credentials.createFromSecureContext(createSecureContext(tls));
    const serverName = this.opts.serverName;
    this.#sockets = new Set();
    this.#client = new grpc.Client(`dns:${this.opts.address}`, tracked(creds, this.#sockets), {
      'grpc.max_receive_message_length': this.opts.maxReceiveBytes,
      'grpc.use_local_subchannel_pool': 1, // connections of its own, closed with it
      'grpc.enable_retries': 0,
      ...this.opts.channelOptions,
      ...(serverName !== undefined && serverName !== this.#host && { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName }),
    });
    this.#rootPem = key;
    return this.#client;
  }

  /** Closes the client and destroys its sockets: the next `client()` dials again. */
  reset(): void {
    this.#client?.close();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    this.#client = undefined;
    this.#rootPem = undefined;
  }
}

/**
 * The credentials, telling `sockets` of every TCP socket they secure. grpc-js's channel close leaves
 * a connection whose TLS handshake has not finished open (a server that never answers would keep it,
 * and the process, alive): reset() destroys them. Wraps grpc-js's connector hook (1.14), which
 * test/sources/istio-ca.test.ts and test/security/istio-ca.test.ts hold to this.
 */
function tracked(creds: ChannelCredentials, sockets: Set<Socket>): ChannelCredentials {
  const wrapped = Object.create(creds) as ChannelCredentials;
  wrapped._createSecureConnector = (...args) => {
    const inner = creds._createSecureConnector(...args);
    // An IP-literal control plane (127.0.0.1:15012): grpc-js would send the IP as SNI, which RFC 6066
    // forbids and Node warns about (DEP0123); without servername Node checks the IP SAN against the host.
    const options = (inner as unknown as { connectionOptions?: { servername?: string } }).connectionOptions;
    if (options?.servername !== undefined && isIP(options.servername) !== 0) delete options.servername;
    return Object.assign(Object.create(inner) as typeof inner, {
      connect: (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        return inner.connect(socket);
      },
    });
  };
  return wrapped;
}
