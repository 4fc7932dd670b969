import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { prepareBody, type PreparedBody } from '../../src/outbound/retry/replay-body.js';
import { legacyHandler, parseRawHeaders, requestHeader } from '../../src/outbound/handler.js';

const KiB = 1024;
async function drain(b: unknown): Promise<Buffer> {
  if (b === null || b === undefined) return Buffer.alloc(0);
  if (typeof b === 'string' || b instanceof Uint8Array) return Buffer.from(b as never);
  const out: Buffer[] = [];
  for await (const c of b as AsyncIterable<Buffer>) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

describe('prepareBody', () => {
  test('no body, strings and buffers within the limit are replayable as they are', () => {
    for (const body of [undefined, null, 'abc', Buffer.alloc(64 * KiB), new Uint8Array(10)]) {
      const p = prepareBody(body) as PreparedBody;
      assert.equal(p.replayable, true);
      assert.equal(p.take(), body);
      assert.equal(p.take(), body);
    }
  });
  test('over the limit (bytes, not characters), sent once', () => {
    const p = prepareBody('é'.repeat(32 * KiB + 1)) as PreparedBody; // 64 KiB + 2 bytes
    assert.equal(p.replayable, false);
    p.take();
    assert.throws(() => p.take());
    assert.equal((prepareBody(Buffer.alloc(64 * KiB + 1)) as PreparedBody).replayable, false);
  });
  test('streams are never read ahead', () => {
    const s = Readable.from(['a']);
    const p = prepareBody(s) as PreparedBody;
    assert.equal(p.replayable, false);
    assert.equal(p.take(), s);
  });
  test('async iterables (what fetch sends) are buffered up to the limit', async () => {
    async function* gen(n: number, size: number) {
      for (let i = 0; i < n; i++) yield new Uint8Array(size).fill(i);
    }
    const small = await prepareBody(gen(4, 16 * KiB));
    assert.equal(small.replayable, true);
    const a = await drain(small.take());
    const b = await drain(small.take());
    assert.equal(a.length, 64 * KiB);
    assert.deepEqual(a, b);
    const big = await prepareBody(gen(5, 16 * KiB));
    assert.equal(big.replayable, false);
    const all = await drain(big.take());
    assert.equal(all.length, 80 * KiB, 'nothing lost: the bytes read ahead, then the rest');
    assert.equal(all[79 * KiB], 4);
  });
  test('sync iterables of strings, and a custom limit', async () => {
    const p = await prepareBody(['ab', 'cd'], 3);
    assert.equal(p.replayable, false);
    assert.equal((await drain(p.take())).toString(), 'abcd');
    const q = await prepareBody(['ab', 'cd'], 4);
    assert.equal(q.replayable, true);
    assert.equal((q.take() as Buffer).toString(), 'abcd');
  });
});

describe('handler helpers', () => {
  test('requestHeader reads every shape DispatchOptions.headers takes', () => {
    assert.equal(requestHeader({ 'X-A': '1' }, 'x-a'), '1');
    assert.equal(requestHeader(['x-a', '1', 'X-A', '2'], 'x-a'), '1, 2');
    assert.equal(requestHeader([['x-a', '1']] as never, 'x-a'), '1');
    assert.equal(requestHeader(new Map([['x-a', '1']]) as never, 'x-a'), '1');
    assert.equal(requestHeader(undefined, 'x-a'), undefined);
  });
  test('parseRawHeaders lower-cases names and collects repeats', () => {
    assert.deepEqual({ ...parseRawHeaders([Buffer.from('Retry-After'), Buffer.from('1'), Buffer.from('set-cookie'), Buffer.from('a'), Buffer.from('Set-Cookie'), Buffer.from('b')]) }, {
      'retry-after': '1',
      'set-cookie': ['a', 'b'],
    });
  });
  test('legacyHandler adapts a new-style handler, including pause/resume and abort', () => {
    const seen: unknown[] = [];
    let ctl: { pause(): void; resume(): void; abort(e?: Error): void } | undefined;
    const h = legacyHandler({
      onRequestStart(c: never) {
        ctl = c;
      },
      onResponseStart(_c: never, status: number, headers: Record<string, string>) {
        seen.push(['start', status, headers['x-a']]);
        ctl!.pause();
      },
      onResponseData(_c: never, chunk: Buffer) {
        seen.push(['data', chunk.toString()]);
      },
      onResponseEnd() {
        seen.push(['end']);
      },
      onResponseError(_c: never, e: Error) {
        seen.push(['error', e.message]);
      },
    } as never);
    let aborted: Error | undefined;
    let resumed = 0;
    h.onConnect!((e) => (aborted = e));
    assert.equal(h.onHeaders!(200, [Buffer.from('X-A'), Buffer.from('1')], () => resumed++, 'OK'), false);
    ctl!.resume();
    assert.equal(resumed, 1);
    assert.equal(h.onData!(Buffer.from('hi')), true);
    h.onComplete!([]);
    ctl!.abort(new Error('stop'));
    assert.equal(aborted?.message, 'stop');
    assert.deepEqual(seen, [['start', 200, '1'], ['data', 'hi'], ['end']]);
    assert.equal(legacyHandler({ onError() {} } as never).onError !== undefined, true);
  });
});
