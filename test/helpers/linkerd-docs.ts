// Linkerd policy documents for tests of route choice: one Server `payments` (with two
// MeshTLSAuthentications: `admins` = the admin service account, `meshed` = any meshed client),
// HTTPRoutes attached to it, and AuthorizationPolicies on one route each.

/** The Server on `port` (pods labelled app=payments) and the `admins` / `meshed` authentications. */
export const linkerdServer = (port: number) => `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: { name: payments, namespace: default }
spec:
  podSelector: { matchLabels: { app: payments } }
  port: ${port}
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: { name: admins, namespace: default }
spec:
  identities: ["admin.default.serviceaccount.identity.linkerd.cluster.local"]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: { name: meshed, namespace: default }
spec:
  identities: ["*"]
`;

/** An HTTPRoute on the Server; `spec` holds `rules:` (and `hostnames:`) lines, indented by two. */
export const linkerdRoute = (name: string, spec: string) => `---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: { name: ${name}, namespace: default }
spec:
  parentRefs: [{ name: payments, kind: Server, group: policy.linkerd.io }]
${spec}`;

/** An AuthorizationPolicy on one route for `who` (admins or meshed), named `name` (default route-who). */
export const linkerdAuthz = (route: string, who: 'admins' | 'meshed', name = `${route}-${who}`) => `---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: default }
spec:
  targetRef: { group: policy.linkerd.io, kind: HTTPRoute, name: ${route} }
  requiredAuthenticationRefs: [{ name: ${who}, kind: MeshTLSAuthentication, group: policy.linkerd.io }]
`;
