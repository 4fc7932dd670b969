/** The mesh file of `sidecarless control-plane` (docs/control-planes.md "The mesh file"). */
export { MeshFileError, formatMeshIssue, type MeshFileIssue } from './errors.js';
export { type MeshModel, type MeshServiceModel, type RefusedEndpoint, type RegisteredEndpoints, type WorkloadRef, joinEndpoints, registrationProblem } from './model.js';
export { parseMeshFile, type ParseMeshFileOptions } from './parse.js';
export { loadMeshFile, policyPath, type LoadMeshFileOptions } from './load.js';
export { watchMeshFile, type MeshFileWatcher, type WatchMeshFileOptions } from './watch.js';
export { PROTOCOLS, type MeshProtocol, type MeshFileInput } from './schema.js';
