/**
 * Cross-references a schema cannot check: a service declared twice, a split (of a service or of
 * a route) naming a service the file does not declare. DESIGN.md: a mesh file that names an
 * undeclared service is rejected whole ("pending" is only for what a live xDS stream has not
 * delivered yet). Pure.
 */
import { didYouMean } from '../../suggest.js';
import type { Issues } from './issues.js';
import type { MeshFileConfig, MeshServiceConfig } from './schema.js';

function checkSplit(split: MeshServiceConfig['split'], at: string, s: MeshServiceConfig, names: ReadonlyMap<string, Set<string>>, is: Issues): void {
  const here = names.get(s.namespace) ?? new Set<string>();
  (split ?? []).forEach((b, j) => {
    if (here.has(b.service)) return;
    const elsewhere = [...names].filter(([, set]) => set.has(b.service)).map(([ns]) => ns);
    const hint = elsewhere.length > 0
      ? ` (it is declared in namespace ${elsewhere.map((n) => `"${n}"`).join(', ')}: a split backend is a service of the same namespace)`
      : didYouMean(b.service, here);
    is.add(`${at}[${j}].service`, `"${b.service}" is not a service of namespace "${s.namespace}" in this file${hint}: declare it under services, or remove it from the split`);
  });
}

export function checkRefs(cfg: MeshFileConfig, is: Issues): void {
  const names = new Map<string, Set<string>>();
  const first = new Map<string, number>();
  cfg.services.forEach((s, i) => {
    const key = `${s.name}.${s.namespace}`;
    const prev = first.get(key);
    if (prev !== undefined) {
      is.add(`services[${i}].name`, `"${s.name}" in namespace "${s.namespace}" is declared twice (first at ${is.where(`services[${prev}]`)}): declare each service once, with one port`);
      return;
    }
    first.set(key, i);
    if (!names.has(s.namespace)) names.set(s.namespace, new Set());
    names.get(s.namespace)!.add(s.name);
  });
  cfg.services.forEach((s, i) => {
    checkSplit(s.split, `services[${i}].split`, s, names, is);
    (s.routes ?? []).forEach((r, k) => checkSplit(r.split, `services[${i}].routes[${k}].split`, s, names, is));
  });
}
