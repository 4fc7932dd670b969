/**
 * `loadMeshFile`: reads a mesh file and the policy files it names (relative to its directory) and
 * parses them whole (parse.ts). The only I/O of a load.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { MeshFileError } from './errors.js';
import type { MeshModel } from './model.js';
import { parseMeshFile } from './parse.js';

export interface LoadMeshFileOptions {
  /** Istio's root namespace for AuthorizationPolicies (default istio-system). */
  readonly istioRootNamespace?: string;
}

/** A policy file's path as the mesh file at `meshFile` names it (relative to the mesh file's directory). */
export function policyPath(meshFile: string, rel: string): string {
  return isAbsolute(rel) ? rel : join(dirname(meshFile), rel);
}

function readError(e: NodeJS.ErrnoException): string {
  if (e.code === 'ENOENT') return 'it does not exist';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  if (e.code === 'EISDIR') return 'it is a directory: name the mesh file in it';
  return `${e.message}${e.code ? ` (${e.code})` : ''}`;
}

/** The mesh file's text, or MeshFileError saying why it cannot be read. */
export async function readMeshText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const why = readError(e as NodeJS.ErrnoException);
    throw new MeshFileError(path, [{ file: path, path: '(root)', message: `cannot read the mesh file: ${why}; pass the path of a readable YAML file (--config mesh.yaml)` }]);
  }
}

/** Parses `text` as the mesh file at `path`, reading its policy files now (small files, read once per load). */
export function parseMeshFileAt(path: string, text: string, o: LoadMeshFileOptions = {}): MeshModel {
  return parseMeshFile(text, {
    file: path,
    readPolicy: (rel) => readFileSync(policyPath(path, rel), 'utf8'),
    policyFileName: (rel) => policyPath(path, rel),
    ...(o.istioRootNamespace !== undefined && { istioRootNamespace: o.istioRootNamespace }),
  });
}

/**
 * Loads the mesh file at `path` with its policy files.
 * @throws MeshFileError (code ERR_SIDECARLESS_MESH_FILE) listing every issue with its file and line.
 */
export async function loadMeshFile(path: string, o: LoadMeshFileOptions = {}): Promise<MeshModel> {
  return parseMeshFileAt(path, await readMeshText(path), o);
}
