/**
 * Channel credentials for calling a mesh service with @grpc/grpc-js: the workload's SVID as the
 * client certificate (the current one for every new connection: certificate-provider.ts), and the
 * server accepted only when its chain verifies against the bundle of the server's own trust
 * domain AND its SPIFFE ID is the service's (tls/verify-peer.ts, from grpc-js's
 * checkServerIdentity, which Node hands the server's whole chain). Node skips
 * checkServerIdentity on a resumed TLS session; grpc-js's channel never offers one (it passes
 * no `session` to tls.connect), so every connection is a full handshake and checked: the
 * contract test in test/grpc pins that.
 */
import { type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { type Clock } from '../clock.js';
import { PeerIdentityError } from '../errors.js';
import { type X509Source } from '../sources/source.js';
import { derChainOf, verifyPeerChain } from '../tls/peer.js';
import { type SourceCertificateProvider } from './certificate-provider.js';
import { type GrpcModule } from './module.js';
import { isDnsName } from '../identity/dns-id.js';

export type ChannelCredentials = InstanceType<GrpcModule['ChannelCredentials']>;

export interface ChannelDeps {
  readonly grpc: GrpcModule;
  readonly provider: SourceCertificateProvider;
  readonly source: X509Source;
  readonly clock: Clock;
}

/**
 * Why the server that presented `cert` is not `service` (an Error, as checkServerIdentity
 * returns), or undefined. `expected`: the SPIFFE IDs the service may present, read at each
 * handshake (the snapshot may have changed).
 */
export function checkServer(d: Pick<ChannelDeps, 'source' | 'clock'>, service: string, expected: () => readonly string[], cert: PeerCertificate): Error | undefined {
  const describe = `gRPC service "${service}"`;
  try {
    d.source.getX509Svid(); // no connection goes out with an expired identity
  } catch (e) {
    return new PeerIdentityError(`${describe}: ${(e as Error).message}`, { cause: e });
  }
  if (!cert || !cert.raw) return new PeerIdentityError(`${describe}: the server presented no certificate`);
  const v = verifyPeerChain(derChainOf(cert as DetailedPeerCertificate), d.source.getBundles(), d.clock.now());
  if (!v.ok) return new PeerIdentityError(`${describe}: ${v.reason}`);
  const want = expected();
  if (want.includes(v.verified.id.id)) return undefined;
  return new PeerIdentityError(`${describe}: expected ${want.length === 1 ? want[0] : `one of ${want.join(', ')}`}, the server presented ${v.verified.id.id}`);
}

/** ChannelCredentials (of `d.grpc`) requiring the service's SPIFFE ID (or DNS-like identity). */
export function channelCredentials(d: ChannelDeps, service: string, expected: () => readonly string[]): ChannelCredentials {
  const creds = d.grpc.experimental.createCertificateProviderChannelCredentials(d.provider, d.provider, {
    checkServerIdentity: (_host, cert) => checkServer(d, service, expected, cert),
  });
  return withDnsServerName(creds, expected);
}

/**
 * A service whose servers hold a DNS-like (Linkerd) identity is sent that name as SNI, whatever
 * host the channel targets: a Linkerd proxy terminates TLS only when the ClientHello names its own
 * identity, and passes anything else through untouched (linkerd2-proxy tls/server.rs). SPIFFE
 * services keep grpc-js's own SNI. Wraps grpc-js's connector hook (1.14), as pinned-channel.ts does.
 */
function withDnsServerName(creds: ChannelCredentials, expected: () => readonly string[]): ChannelCredentials {
  const wrapped = Object.create(creds) as ChannelCredentials;
  wrapped._createSecureConnector = (target, options, callCredentials) => {
    const name = expected().find((id) => isDnsName(id));
    // grpc-js reads the SNI from this channel option at each connect (its checkServerIdentity wrapper
    // then passes the name as the host, which checkServer ignores: it judges the verified identity).
    const o = name === undefined ? options : { ...options, 'grpc.ssl_target_name_override': name };
    return creds._createSecureConnector(target, o, callCredentials);
  };
  return wrapped;
}
