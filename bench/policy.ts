/**
 * Policy evaluation cost: 100 rules over 1,000 principals, against an evaluator that always allows
 * (same requests, same run). Goal: median ≤ 2 µs per decision.
 *   node --import tsx bench/policy.ts [--quick]
 */
import { pathToFileURL } from 'node:url';
import { compilePolicy, type PolicyInput, type PolicyRequest } from '../src/policy/index.js';

const TD = 'cluster.local';

function buildPolicy(wildcard = false): PolicyInput {
  const rules: NonNullable<PolicyInput['rules']> = [];
  for (let r = 0; r < 100; r++) {
    const identities = Array.from({ length: 10 }, (_, i) => `spiffe://${TD}/ns/ns${r % 20}/sa/svc-${r * 10 + i}${wildcard ? '*' : ''}`);
    if (r % 10 === 9) {
      rules.push({ name: `deny-${r}`, action: 'deny', from: { identities }, to: { paths: [`/admin/${r}/*`] } });
    } else {
      rules.push({
        name: `allow-${r}`,
        action: 'allow',
        from: { identities },
        to: [{ methods: ['GET', 'HEAD'], paths: [`/api/v1/r${r}/*`, '/users/{id}/orders'] }, { methods: ['POST'], paths: [`/api/v1/r${r}/submit`] }],
      });
    }
  }
  return { rules };
}

function buildRequests(n: number): PolicyRequest[] {
  const out: PolicyRequest[] = [];
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) {
    const p = Math.floor(rnd() * 1000);
    const r = Math.floor(p / 10);
    const spiffeId = `spiffe://${TD}/ns/ns${r % 20}/sa/svc-${p}`;
    const kind = rnd();
    const path = kind < 0.6 ? `/api/v1/r${r}/items` : kind < 0.8 ? '/users/7/orders' : `/api/v1/r${(r + 1) % 100}/items`;
    const headers: Record<string, string> = { host: 'api.local' };
    out.push({
      peer: { spiffeId, trustDomain: TD, namespace: `ns${r % 20}`, serviceAccount: `svc-${p}` },
      sourceIp: '10.0.0.1',
      method: 'GET',
      path,
      host: 'api.local',
      port: 8443,
      header: (h) => headers[h],
    });
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs the benchmark; returns one row per evaluator plus the ratio. */
export async function benchPolicy(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const compiled = compilePolicy(buildPolicy(), { trustDomain: TD, namespace: 'default' });
  // Same rules with prefix patterns: the exact-identity index cannot help, every rule is scanned.
  const scanned = compilePolicy(buildPolicy(true), { trustDomain: TD, namespace: 'default' });
  const requests = buildRequests(4096);
  const allowAll = { evaluate: (_r: PolicyRequest) => ({ allowed: true }) };
  const perRound = opts.quick ? 20_000 : 400_000;
  const rounds = opts.quick ? 3 : 9;
  const evaluators: Array<[string, (r: PolicyRequest) => { allowed: boolean }]> = [
    ['always-allow', (r) => allowAll.evaluate(r)],
    ['compiled (100 rules, 1000 principals)', (r) => compiled.evaluate(r)],
    ['compiled, prefix identities (no index)', (r) => scanned.evaluate(r)],
  ];
  const results = new Map<string, number[]>();
  let allowed = 0;
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of evaluators) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < perRound; i++) if (fn(requests[i & 4095]!).allowed) allowed++;
      const ns = Number(process.hrtime.bigint() - t0) / perRound;
      if (round > 0) (results.get(name) ?? results.set(name, []).get(name)!).push(ns);
    }
  }
  const base = median(results.get('always-allow')!);
  const rows: Array<Record<string, number | string>> = evaluators.map(([name]) => {
    const m = median(results.get(name)!);
    return { evaluator: name, 'median ns/decision': Math.round(m * 10) / 10, 'decisions/s': Math.round(1e9 / m), 'ratio vs always-allow': Math.round((m / base) * 10) / 10 };
  });
  const compiledMedian = median(results.get('compiled (100 rules, 1000 principals)')!);
  if (allowed === 0) throw new Error('benchmark requests were never allowed: the workload is wrong');
  rows.push({ evaluator: 'goal: compiled median ≤ 2000 ns', 'median ns/decision': Math.round(compiledMedian), 'decisions/s': '', 'ratio vs always-allow': compiledMedian <= 2000 ? 'met' : 'MISSED' });
  return { name: 'policy', rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchPolicy({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
}
