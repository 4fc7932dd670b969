// The two hooks of a mesh (hooks.ts), found by their Symbol.for keys: a mesh from another copy of
// the package (its ESM or CJS build) carries them too. A mesh without them is refused loudly.
import { type JudgeFrontedHook, type ThawHook, kJudgeFronted, kThaw } from '../mesh/hooks.js';
import { type Mesh } from '../mesh.js';

export function thawOf(mesh: Mesh): ThawHook {
  return hook<ThawHook>(mesh, kThaw, 'thaw');
}

export function judgeOf(mesh: Mesh): JudgeFrontedHook {
  return hook<JudgeFrontedHook>(mesh, kJudgeFronted, 'judgeFronted');
}

function hook<T>(mesh: Mesh, key: symbol, name: string): T {
  const fn = (mesh as unknown as Record<symbol, unknown>)[key];
  if (typeof fn !== 'function') throw new TypeError(`this mesh has no ${name} hook: sidecarless/serverless needs a mesh made by createMesh of sidecarless ${'>='} 0.1`);
  return fn as T;
}

/** `inbound.frontEnd` of the mesh's config, when there is one (read defensively: an older config has none). */
export function frontEndOf(mesh: Mesh): unknown {
  const inbound = (mesh.config as { inbound?: unknown }).inbound;
  return typeof inbound === 'object' && inbound !== null ? (inbound as { frontEnd?: unknown }).frontEnd : undefined;
}
