/**
 * The Kubernetes importers (Istio, Linkerd: zod schemas of their resources) for load.ts, which must
 * not load them at import: cold start (issue 14). Tests run the sources unbundled: static imports
 * here; the build takes zod.bundle.ts (see src/config/zod.ts).
 */
import { importIstio } from './istio.js';
import { groupOf } from './k8s.js';
import { importLinkerd } from './linkerd.js';

const loaded = { importIstio, importLinkerd, groupOf };

export const importers = (): typeof loaded => loaded;
