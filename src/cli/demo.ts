/**
 * `sidecarless demo`: the main job, live, on the embedded control plane. The orchestrator
 * (demo/orchestrate.ts) runs the control plane and starts payments replicas, payments-v2 and orders
 * as separate processes that join it (demo/roles.ts): none names an endpoint. The scenes
 * (demo/scenes.ts): replicas registering, calls over mTLS spreading, a replica joining and leaving,
 * a 90/10 split and a policy change made by editing the files, an intruder refused, the stat table
 * and the control plane's status. The hidden options run one demo process (a role).
 */
import { defineCommand } from './args.js';

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'a small mesh on its own control plane, live: discovery, mTLS, splits, policy, an intruder refused',
  description:
    'Starts the embedded control plane and payments replicas (one slow), payments-v2 and an orders client as\n' +
    'separate processes that join it with tokens (no static endpoints), shows a replica joining and leaving,\n' +
    'a 90/10 split and a policy change made live by editing the mesh file, an intruder from another trust\n' +
    'domain refused during the handshake, the traffic table of one replica and the control plane status,\n' +
    'and exits with a summary.',
  options: {
    role: { type: 'string', hidden: true, help: 'internal' },
    name: { type: 'string', hidden: true, help: 'internal' },
    service: { type: 'string', hidden: true, help: 'internal' },
    cp: { type: 'string', hidden: true, help: 'internal' },
    root: { type: 'string', hidden: true, help: 'internal' },
    token: { type: 'string', hidden: true, help: 'internal' },
    'delay-ms': { type: 'string', hidden: true, help: 'internal' },
    admin: { type: 'boolean', hidden: true, help: 'internal' },
    deferred: { type: 'boolean', hidden: true, help: 'internal' },
  },
  exits: '0 every step behaved as it should, 1 a step did not, 2 usage error',
  async run(v, io) {
    if (v.role) return (await import('./demo/roles.js')).runRole(v.role, v);
    return (await import('./demo/orchestrate.js')).orchestrate(io);
  },
});

