import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkerdAuthority } from '../../../src/control-plane/linkerd/authority.js';

const ctx = { namespace: 'emojivoto', clusterDomain: 'cluster.local' };

test('linkerdAuthority: Kubernetes service names expand to the FQDN Linkerd is asked about', () => {
  const cases: Array<[string, string | undefined]> = [
    ['web:8080', 'web.emojivoto.svc.cluster.local:8080'],
    ['web.other:80', 'web.other.svc.cluster.local:80'],
    ['web.other.svc:80', 'web.other.svc.cluster.local:80'],
    ['web.other.svc.cluster.local:80', 'web.other.svc.cluster.local:80'],
    ['web.other.svc.cluster.local.:80', 'web.other.svc.cluster.local:80'],
    ['WEB.Other.svc.cluster.local:80', 'web.other.svc.cluster.local:80'],
    ['example.com:443', 'example.com.svc.cluster.local:443'],
    ['a.b.c.svc.cluster.local:80', undefined],
    ['api.example.com:443', undefined],
    ['10.0.0.1:80', undefined],
    ['[::1]:80', undefined],
    ['web', undefined],
    ['web:0', undefined],
    ['web:70000', undefined],
    ['we_b:80', undefined],
    ['*.svc.cluster.local:80', undefined],
  ];
  for (const [host, want] of cases) assert.equal(linkerdAuthority(host, ctx), want, host);
});
