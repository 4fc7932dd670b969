/**
 * Fields a control plane sent that our .proto files do not declare (the generated decoders record
 * their numbers, proto/wire.ts unknownFields) are never ignored silently: each is refused, naming
 * its path, Envoy's name when the message's table knows it and its number, and what to change;
 * unless the table lists it as changing nothing a client does, then it is noted (accepted, with
 * the reason). A field no table names (a newer Envoy field, or garbage) is refused too: fail
 * closed. Every message a translator reads goes through `refuseUnknown`; the tables are in
 * envoy-fields.ts. Pure.
 */
import { unknownFields } from '../../../proto/wire.js';

/** What refuseUnknown reports into: result.ts's Findings (structural, so this module imports nothing of translate/). */
export interface Findings {
  refuse(field: string, message: string): void;
  note(field: string, message: string): void;
}

export interface FieldTable {
  /** The message's full proto name, for reasons: `envoy.config.cluster.v3.Cluster`. */
  readonly message: string;
  /** Envoy's names of the fields we do not declare, by number (from the real protos). */
  readonly names: Readonly<Record<number, string>>;
  /** By Envoy name: fields accepted with a note, and why they change nothing a client does. */
  readonly noEffect?: Readonly<Record<string, string>>;
  /** By Envoy name: what to say when refusing (what the mesh cannot do, what to change); else a generic reason. */
  readonly reasons?: Readonly<Record<string, string>>;
}

const GENERIC = 'is not supported by sidecarless: remove it from what the control plane sends this client';

/**
 * Refuses (or notes, per `table`) each undeclared field of `msg`, a decoded message at field path
 * `at` ('' for the resource itself). A message with none costs one property read.
 */
export function refuseUnknown(msg: object | undefined, f: Findings, at: string, table: FieldTable): void {
  const list = msg === undefined ? undefined : unknownFields(msg);
  if (list === undefined) return;
  for (const n of list) {
    if (n === 0) {
      f.refuse(at === '' ? table.message : at, 'carries more undeclared fields than sidecarless lists: not applied');
      continue;
    }
    const name = table.names[n];
    const path = `${at === '' ? '' : `${at}.`}${name ?? `[field ${n}]`}`;
    const why = name === undefined ? undefined : table.noEffect?.[name];
    if (why !== undefined) f.note(path, `no effect: ${why} (${table.message} field ${n})`);
    else if (name === undefined) f.refuse(path, `field ${n} of ${table.message} is one sidecarless does not know (a newer Envoy field?): not applied`);
    else f.refuse(path, `${table.reasons?.[name] ?? GENERIC} (${table.message} field ${n})`);
  }
}

/** `refuseUnknown` over each element of a repeated field: `at[i]`. */
export function refuseUnknownEach(list: readonly object[], f: Findings, at: string, table: FieldTable): void {
  list.forEach((m, i) => refuseUnknown(m, f, `${at}[${i}]`, table));
}
