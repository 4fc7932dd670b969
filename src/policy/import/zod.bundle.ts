// The build's zod.ts (see there): the importers, and zod, on the first Kubernetes document.
type Importers = {
  importIstio: typeof import('./istio.js').importIstio;
  importLinkerd: typeof import('./linkerd.js').importLinkerd;
  groupOf: typeof import('./k8s.js').groupOf;
};

let loaded: Importers | undefined;

export const importers = (): Importers =>
  (loaded ??= {
    importIstio: (require('./istio.js') as typeof import('./istio.js')).importIstio,
    importLinkerd: (require('./linkerd.js') as typeof import('./linkerd.js')).importLinkerd,
    groupOf: (require('./k8s.js') as typeof import('./k8s.js')).groupOf,
  });
