// Which router a server hands its requests to, read from its 'request' listeners (router-kind.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { ANY_ROUTING, EXPRESS_ROUTING } from '../../src/policy/router-semantics.js';
import { routingOfListener, routingOfServer } from '../../src/inbound/router-kind.js';

test('an Express app and an express.Router() route with Express semantics; a plain function may wrap any router', () => {
  assert.deepEqual(routingOfListener(express()), { kind: 'known', routing: EXPRESS_ROUTING });
  assert.deepEqual(routingOfListener(express.Router()), { kind: 'known', routing: EXPRESS_ROUTING });
  assert.deepEqual(routingOfListener(() => {}), { kind: 'known', routing: ANY_ROUTING });
  assert.deepEqual(routingOfListener(Object.assign(() => {}, { handle: 1, use: 2 })), { kind: 'known', routing: ANY_ROUTING }, 'look-alikes are not Express');
});

test('Fastify’s own request listener cannot be judged without the plugin', async () => {
  const app = Fastify();
  const [listener] = app.server.listeners('request');
  const r = routingOfListener(listener);
  assert.equal(r.kind, 'unsafe');
  assert.match((r as { why: string }).why, /fastify\.register\(mesh\.fastify\)/);
  await app.close();
});

test('a server’s routing follows its listeners as they change (the union of all of them)', () => {
  const server = createServer(() => {});
  assert.deepEqual(routingOfServer(server), { kind: 'known', routing: ANY_ROUTING });
  server.removeAllListeners('request');
  const app = express();
  server.on('request', app);
  assert.deepEqual(routingOfServer(server), { kind: 'known', routing: EXPRESS_ROUTING });
  server.on('request', () => {});
  assert.deepEqual(routingOfServer(server), { kind: 'known', routing: ANY_ROUTING }, 'the union with a plain function');
  server.removeAllListeners('request');
  assert.deepEqual(routingOfServer(server).kind, 'known');
});
