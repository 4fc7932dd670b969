/**
 * The mesh's run-time updates (control-plane/updates.ts: setService, setEndpoints, … judged by
 * config.ts's zod schemas), loaded when one is first made, not at import (cold start, issue 14).
 * Tests run the sources unbundled: a static import here; the build takes zod.bundle.ts (see
 * src/config/zod.ts).
 */
import * as updates from '../control-plane/updates.js';

export { updates };
