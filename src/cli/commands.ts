/**
 * The command tree of `sidecarless`. Each command lives in its own module, loaded when it runs
 * (or when a help text lists it), so `sidecarless ca init` never evaluates the mesh.
 */
import { type Command } from './args.js';

type Load = () => Promise<Command>;

/** A top-level command, or a group of sub-commands (`ca`, `svid`, `policy`). */
export type Entry = { readonly load: Load } | { readonly group: Readonly<Record<string, Load>> };

export const TREE: Readonly<Record<string, Entry>> = {
  ca: { group: { init: () => import('./ca-init.js').then((m) => m.caInitCommand as Command) } },
  svid: {
    group: {
      issue: () => import('./svid-issue.js').then((m) => m.svidIssueCommand as Command),
      inspect: () => import('./svid-inspect.js').then((m) => m.svidInspectCommand as Command),
    },
  },
  policy: { group: { check: () => import('./policy-check.js').then((m) => m.policyCheckCommand as Command) } },
  'control-plane': { group: { token: () => import('./control-plane-token.js').then((m) => m.controlPlaneTokenCommand as Command) } },
  stat: { load: () => import('./stat.js').then((m) => m.statCommand as Command) },
  demo: { load: () => import('./demo.js').then((m) => m.demoCommand as Command) },
};

/** Every command, in the order help lists them. */
export async function allCommands(): Promise<Command[]> {
  const out: Command[] = [];
  for (const e of Object.values(TREE)) {
    if ('load' in e) out.push(await e.load());
    else for (const load of Object.values(e.group)) out.push(await load());
  }
  return out;
}

/** "  name  summary" rows, aligned. */
export function commandList(commands: readonly Command[]): string[] {
  const width = Math.max(...commands.map((c) => c.name.length));
  return commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
}
