/**
 * Registrations kept under `--state` so they survive a control-plane restart:
 * `<state>/registrations.json`, written atomically (temp file + rename, mode 0600) after changes,
 * read at start. A file that does not parse is set aside (renamed `.bad`) with a warning: the
 * workloads register again when they reconnect, so nothing is lost but the grace.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Registration } from './registry.js';

export const REGISTRATIONS_FILE = 'registrations.json';

const label = z.string().max(253);
const registrationSchema = z
  .object({
    service: z.string().min(1).max(63),
    namespace: z.string().min(1).max(63),
    address: z.string().min(3).max(300),
    identity: z.string().startsWith('spiffe://').max(2048),
    labels: z.record(label, label),
    locality: z.object({ region: label, zone: label, subZone: label }).strict().optional(),
    name: label.optional(),
  })
  .strict();
const fileSchema = z.object({ version: z.literal(1), registrations: z.array(registrationSchema).max(10_000) }).strict();

export interface SavedRegistrations {
  readonly registrations: Registration[];
  /** Why the file was set aside, when it was. */
  readonly warning?: string;
}

export async function loadRegistrations(stateDir: string): Promise<SavedRegistrations> {
  const file = join(stateDir, REGISTRATIONS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { registrations: [] };
    throw e;
  }
  let parsed: z.infer<typeof fileSchema>;
  try {
    parsed = fileSchema.parse(JSON.parse(text));
  } catch (e) {
    await rename(file, `${file}.bad`).catch(() => undefined);
    const why = e instanceof z.ZodError ? (e.issues[0]?.message ?? 'invalid') : (e as Error).message;
    return { registrations: [], warning: `${file} could not be read (${why}); moved to ${REGISTRATIONS_FILE}.bad: workloads register again when they reconnect` };
  }
  return { registrations: parsed.registrations as Registration[] };
}

export async function saveRegistrations(stateDir: string, registrations: readonly Registration[]): Promise<void> {
  const file = join(stateDir, REGISTRATIONS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const plain = registrations.map(({ service, namespace, address, identity, labels, locality, name }) => ({
    service,
    namespace,
    address,
    identity,
    labels,
    ...(locality && { locality }),
    ...(name !== undefined && { name }),
  }));
  await writeFile(tmp, JSON.stringify({ version: 1, registrations: plain }, null, 1) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}
