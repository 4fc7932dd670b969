// The renewing source (sources/renewing.ts) over the dev CA's CSR signing, and over issuers that
// misbehave the ways a control plane's CA can: a chain that does not verify, an SVID for someone
// else, a CA that goes down. Virtual time; the last good SVID is kept through every failure.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VirtualClock } from '../../src/clock.js';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { createCsr, generateKeyPair } from '../../src/identity/keys.js';
import { devCaIssuer } from '../../src/sources/issuers/dev-ca.js';
import { type Issuer, RenewingSource } from '../../src/sources/renewing.js';
import { x509 } from '../helpers/x509.js';

const TD = 'cluster.local';
const ID = `spiffe://${TD}/ns/default/sa/orders`;

describe('DevCa.signCsr: what a CA checks before it signs', () => {
  test('a CSR naming exactly the SPIFFE ID asked for is signed: the leaf carries that ID and the CSR key', async () => {
    const ca = await createDevCa({ trustDomain: TD });
    const keys = await generateKeyPair();
    const issued = await ca.signCsr(await createCsr(keys, ID), { spiffeId: ID, ttlMs: 600_000 });
    assert.match(issued.certChainPem, /BEGIN CERTIFICATE/);
    assert.equal(issued.bundlePem, ca.bundlePem);
  });

  test('refused: another identity in the CSR, another trust domain, garbage, a CSR whose signature does not verify', async () => {
    const ca = await createDevCa({ trustDomain: TD });
    const keys = await generateKeyPair();
    const other = await createCsr(keys, `spiffe://${TD}/ns/default/sa/admin`);
    await assert.rejects(ca.signCsr(other, { spiffeId: ID }), /must name exactly spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
    await assert.rejects(ca.signCsr(await createCsr(keys, 'spiffe://evil.example/ns/default/sa/orders'), { spiffeId: 'spiffe://evil.example/ns/default/sa/orders' }), /signs for trust domain "cluster.local"/);
    await assert.rejects(ca.signCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', { spiffeId: ID }), /not a PKCS#10 certificate request/);
    // Flip a byte inside the signature (the last bytes of the DER): the signature no longer verifies.
    const pem = await createCsr(keys, ID);
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 3]! ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(ca.signCsr(tampered, { spiffeId: ID }), /signature does not verify|not a PKCS#10/);
  });
});

describe('RenewingSource', () => {
  let caOf: Awaited<ReturnType<typeof createDevCa>>;
  let clockOf: VirtualClock;
  async function rig(issuer?: (real: Issuer) => Issuer) {
    const clock = (clockOf = new VirtualClock(Date.UTC(2030, 0, 1)));
    const ca = (caOf = await createDevCa({ trustDomain: TD, clock }));
    const real = devCaIssuer(ca);
    const errors: string[] = [];
    const source = new RenewingSource({ issuer: issuer ? issuer(real) : real, spiffeId: ID, kind: 'test-ca', clock, ttlMs: 3_600_000, random: () => 0.5, onError: (e) => errors.push(e.message) });
    return { clock, ca, source, errors };
  }

  test('a fresh key per renewal, renewed at half the lifetime (± jitter), on the clock', async (t) => {
    const { clock, source } = await rig();
    t.after(() => source.close());
    await source.start();
    const first = source.getX509Svid();
    assert.equal(first.spiffeId.id, ID);
    assert.equal(source.status().kind, 'test-ca');
    const life = first.notAfter - first.notBefore;
    const at = source.rotateAt - first.notBefore;
    assert.ok(at >= 0.4 * life && at <= 0.6 * life, `renewal at ${(at / life).toFixed(2)} of the lifetime`);
    const renewed = new Promise<void>((r) => source.onUpdate(r));
    await clock.setAsync(source.rotateAt);
    await renewed;
    const second = source.getX509Svid();
    assert.notEqual(second.chain[0]!.serialNumber, first.chain[0]!.serialNumber);
    assert.notEqual(second.keyPem, first.keyPem, 'a new key, not the old one re-certified');
  });

  test('an issuer that answers with a chain that does not verify, or an SVID for someone else, is refused; the last good SVID stays', async (t) => {
    const stranger = await createDevCa({ trustDomain: TD, clock: new VirtualClock(Date.UTC(2030, 0, 1)) });
    let mode: 'ok' | 'foreign-chain' | 'other-id' = 'ok';
    const { clock, source, errors } = await rig((real) => ({
      ...real,
      issue: async (req) => {
        // Signed by another CA, presented with the real bundle: the chain does not verify.
        if (mode === 'foreign-chain') return { ...(await stranger.signCsr(req.csrPem, { spiffeId: req.spiffeId })), bundlePem: (await real.issue(req)).bundlePem };
        if (mode === 'other-id') {
          // The CSR's own key, certified for another workload: a CA that hands out the wrong identity.
          const csr = new x509.Pkcs10CertificateRequest(req.csrPem);
          const now = clockOf.now();
          const leaf = await caOf.sign({
            publicKey: await csr.publicKey.export(),
            notBefore: now - 1_000,
            notAfter: now + 3_600_000,
            extensions: [
              new x509.BasicConstraintsExtension(false, undefined, true),
              new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
              new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://cluster.local/ns/default/sa/admin' }], false),
            ],
          });
          return { certChainPem: leaf.toString('pem') + '\n' + caOf.intermediatesPem, bundlePem: caOf.bundlePem };
        }
        return real.issue(req);
      },
    }));
    t.after(() => source.close());
    await source.start();
    const good = source.getX509Svid();
    for (const m of ['foreign-chain', 'other-id'] as const) {
      mode = m;
      await source.rotate();
      assert.equal(source.getX509Svid().chain[0]!.serialNumber, good.chain[0]!.serialNumber, `${m}: the last good SVID is still served`);
    }
    assert.equal(errors.length, 2);
    assert.match(errors[0]!, /verif|chain|bundle|key/i);
    assert.match(errors[1]!, /issued an SVID for spiffe:\/\/cluster\.local\/ns\/default\/sa\/admin, not for .*orders/);
    assert.ok(source.rotateAt > clock.now(), 'a retry is scheduled');
  });

  test('a CA that goes down: the SVID is kept until it expires, retries back off, and the next good answer is taken', async (t) => {
    let down = false;
    const { clock, source, errors } = await rig((real) => ({ ...real, issue: (req) => (down ? Promise.reject(new Error('CA unreachable')) : real.issue(req)) }));
    t.after(() => source.close());
    await source.start();
    const good = source.getX509Svid();
    down = true;
    await clock.setAsync(source.rotateAt);
    assert.equal(source.getX509Svid().chain[0]!.serialNumber, good.chain[0]!.serialNumber);
    assert.deepEqual(errors, ['CA unreachable']);
    const retryAt = source.rotateAt;
    assert.ok(retryAt > clock.now() && retryAt - clock.now() <= 30_000, 'a backed-off retry, not the next renewal point');
    down = false;
    const renewed = new Promise<void>((r) => source.onUpdate(r));
    await clock.setAsync(retryAt);
    await renewed;
    assert.notEqual(source.getX509Svid().chain[0]!.serialNumber, good.chain[0]!.serialNumber);
  });

  test('frozen past the renewal point (no timer ran): the next use renews', async (t) => {
    const { clock, source } = await rig();
    t.after(() => source.close());
    await source.start();
    const first = source.getX509Svid();
    const renewed = new Promise<void>((r) => source.onUpdate(r));
    clock.jump(source.rotateAt + 1_000 - clock.now());
    assert.equal(source.getX509Svid().chain[0]!.serialNumber, first.chain[0]!.serialNumber, 'still valid: served while renewing');
    await renewed;
    assert.notEqual(source.getX509Svid().chain[0]!.serialNumber, first.chain[0]!.serialNumber);
  });

  test('an issuer whose bundle carries roots of another trust domain is refused: a CA vouches for its own trust domain only', async (t) => {
    const partner = await createDevCa({ trustDomain: 'partner.example', clock: new VirtualClock(Date.UTC(2030, 0, 1)) });
    let foreign = false;
    // The CA's answer is right for cluster.local, and slips in a root that names spiffe://partner.example.
    const { source, errors } = await rig((real) => ({ ...real, issue: async (req) => {
      const issued = await real.issue(req);
      return foreign ? { ...issued, bundlePem: issued.bundlePem + partner.bundlePem } : issued;
    } }));
    t.after(() => source.close());
    await source.start();
    const good = source.getX509Svid();
    foreign = true;
    await source.rotate();
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /roots of trust domain partner\.example: a CA of cluster\.local vouches for cluster\.local only/);
    assert.deepEqual(source.status().trustDomains, [TD], 'no bundle for partner.example: its peers are not authenticated');
    assert.equal(source.getBundle('partner.example'), undefined);
    assert.equal(source.getX509Svid().chain[0]!.serialNumber, good.chain[0]!.serialNumber, 'the last good SVID stays');
    assert.equal(source.status().state, 'stale');
  });

  test('an SVID with no life left is renewed twice a second at most, not in a loop (a CA that answers with a 0 s certificate)', async (t) => {
    const clock = new VirtualClock(Date.UTC(2030, 0, 1)); // a whole second: the dev CA's notAfter is now exactly
    const ca = await createDevCa({ trustDomain: TD, clock });
    const real = devCaIssuer(ca);
    let issued = 0;
    // Past 100 the loop is proven: stop it (failures back off) so the test ends either way.
    const issuer: Issuer = { ...real, issue: (req) => (++issued > 100 ? Promise.reject(new Error('renewal storm')) : real.issue(req)) };
    const source = new RenewingSource({ issuer, spiffeId: ID, kind: 'test-ca', clock, ttlMs: 0, random: () => 0.5 });
    t.after(() => source.close());
    await source.start();
    assert.ok(source.rotateAt - clock.now() >= 500, `the next renewal is ${source.rotateAt - clock.now()} ms ahead`);
    for (let i = 0; i < 50; i++) await clock.advanceAsync(100);
    assert.ok(issued <= 11, `${issued} issuances in 5 s`);
    assert.ok(issued >= 9, `${issued} issuances in 5 s: it keeps renewing`);
  });

  test('an onError that throws (a logger that fails) neither stops the retries nor rejects the renewal (nobody awaits a timer\'s: the process would exit)', async (t) => {
    const clock = new VirtualClock(Date.UTC(2030, 0, 1));
    const ca = await createDevCa({ trustDomain: TD, clock });
    const real = devCaIssuer(ca);
    let down = true;
    let told = 0;
    const issuer: Issuer = { ...real, issue: (req) => (down ? Promise.reject(new Error('CA unreachable')) : real.issue(req)) };
    const onError = () => {
      told++;
      throw new Error('the log transport is gone');
    };
    const source = new RenewingSource({ issuer, spiffeId: ID, kind: 'test-ca', clock, ttlMs: 3_600_000, random: () => 0.5, onError });
    t.after(() => source.close());
    await source.start(); // resolves: the failure is the source's state, not the caller's exception
    assert.equal(told, 1);
    assert.equal(source.status().failures, 1);
    assert.ok(source.rotateAt > clock.now() && Number.isFinite(source.rotateAt), 'a retry is scheduled');
    await clock.advanceAsync(1_000); // the retry, from a timer: its rejection would be unhandled
    assert.equal(told, 2);
    down = false;
    await clock.advanceAsync(2_000);
    assert.equal(source.status().state, 'ready');
  });
});
