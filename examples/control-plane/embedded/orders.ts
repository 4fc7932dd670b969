// orders: calls payments by name (http://payments:8443, as the mesh file declares it) a few times,
// shows what each hop saw, tries two calls the policies forbid, and exits.
import { join } from './join.js';

const mesh = await join('orders');
const call = (method: string) => mesh.fetch('http://payments:8443/charge', { method, ...(method === 'POST' && { body: '{"amount":10}' }) });

// payments and ledger register once their policy is in force: until then a call finds no endpoint.
for (let ok = 0, waited = 0; ok < 3; ) {
  const res = await call('POST').catch(() => undefined);
  if (res?.status === 200) {
    const body = (await res.json()) as { caller: string; ledger: { entry: number; writer: string } };
    console.log(`orders → payments → ledger: 200; payments saw ${body.caller}, ledger saw ${body.ledger.writer} (entry ${body.ledger.entry})`);
    ok++;
    continue;
  }
  await res?.body?.cancel();
  if (++waited === 100) throw new Error(`payments not reachable after 10 s (last answer: ${res?.status ?? 'no endpoint'})`);
  await new Promise((r) => setTimeout(r, 100));
}
const denied = await call('GET');
console.log(`orders → payments GET /charge: ${denied.status} (the policy allows POST only)`);
await denied.body?.cancel();
const direct = await mesh.fetch('http://ledger:8443/entries', { method: 'POST', body: '{}' });
console.log(`orders → ledger POST /entries: ${direct.status} (only payments may write)`);
await direct.body?.cancel();
await mesh.close();
