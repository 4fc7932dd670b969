/**
 * Packing a message into a google.protobuf.Any and unpacking it by type URL: xDS resources and
 * typed configs (an HttpConnectionManager in a Listener, an UpstreamTlsContext in a Cluster) travel
 * so. Every generated message has a `<Name>Codec` ({ typeUrl, encode, decode }) to pass here.
 */
import type { Any } from './google/protobuf/any.js';
import { type DeepPartial, ProtoError } from './wire.js';

/** A message type's type URL and codec, as the generator emits them (ListenerCodec, ...). */
export interface MessageCodec<T> {
  readonly typeUrl: string;
  encode(m: DeepPartial<T>): Uint8Array;
  decode(buf: Uint8Array): T;
}

/** The full message name an Any's type URL names: what follows its last '/' (any host before is allowed). */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Whether an Any holds a message of this type. */
export function isAny<T>(any: Any, codec: MessageCodec<T>): boolean {
  return any.typeUrl.includes('/') && typeNameOf(any.typeUrl) === typeNameOf(codec.typeUrl);
}

export function packAny<T>(codec: MessageCodec<T>, message: DeepPartial<T>): Any {
  return { typeUrl: codec.typeUrl, value: codec.encode(message) };
}

/** The message an Any holds; a ProtoError when it holds another type or bytes that are not one. */
export function unpackAny<T>(any: Any, codec: MessageCodec<T>): T {
  if (!isAny(any, codec)) {
    throw new ProtoError(`expected a ${typeNameOf(codec.typeUrl)}, got ${JSON.stringify(any.typeUrl.slice(0, 200))}`);
  }
  return codec.decode(any.value);
}
