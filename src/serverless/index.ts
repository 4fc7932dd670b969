/**
 * `sidecarless/serverless`: a mesh inside a function (docs/serverless.md). Both wrappers make the
 * mesh once per instance, on the first invocation, check it at each one (a thawed process renews
 * its SVID and drops stale connections first), judge HTTP requests before the handler, and keep
 * nothing alive between invocations.
 */
export { withMesh, type LambdaHandler, type MeshLambdaContext, type MeshLambdaHandler } from './lambda.js';
export { withMeshHttp, type MeshHttpHandler, type MeshRequest } from './http.js';
