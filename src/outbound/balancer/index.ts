/**
 * Load balancers for one mesh service. Pure: no I/O, no timers; clock and randomness injected.
 *
 * ```ts
 * const lb = createBalancer('p2c-ewma');
 * lb.setEndpoints([{ key: '10.0.0.1:8443', weight: 1 }, { key: '10.0.0.2:8443' }]);
 * const ep = lb.pick();                 // undefined: no endpoints at all
 * const t = ep.start();                 // pending + 1
 * try { …; t.end({ ok: res.status < 500, latencyMs }); }
 * catch (e) { t.end({ ok: false, failure: 'connect' }); }
 * ```
 */
import { randomPicker } from './random.js';
import { p2cEwmaPicker } from './p2c.js';
import { leastRequestPicker } from './least-request.js';
import { roundRobinPicker } from './round-robin.js';
import { MeshBalancer, type Picker } from './mesh-balancer.js';
import { ConfigError } from '../../errors.js';
import type { Balancer, BalancerKind, BalancerOptions } from './types.js';

export type * from './types.js';
export { DEFAULT_BALANCER } from './types.js';
export { DEFAULT_EWMA_SETTINGS, PeakEwma, ewmaSettings, type EwmaSettings } from './ewma.js';
export { AliasTable } from './mesh-balancer.js';
export { seededRandom } from './random.js';
export {
  DEFAULT_FAILURE_ACCRUAL_SETTINGS,
  EndpointAccrual,
  failureAccrualSettings,
  type FailureAccrualSettings,
} from './failure-accrual.js';

export const BALANCER_KINDS: readonly BalancerKind[] = Object.freeze(['p2c-ewma', 'least-request', 'round-robin', 'random']);

/** Creates a balancer for one service. Throws `ConfigError` on an unknown kind or bad settings. */
export function createBalancer(kind: BalancerKind = 'p2c-ewma', opts: BalancerOptions = {}): Balancer {
  const random = opts.random ?? Math.random;
  let picker: Picker;
  switch (kind) {
    case 'p2c-ewma':
      picker = p2cEwmaPicker(random);
      break;
    case 'least-request':
      picker = leastRequestPicker(random);
      break;
    case 'round-robin':
      picker = roundRobinPicker(random);
      break;
    case 'random':
      picker = randomPicker(random);
      break;
    default:
      throw new ConfigError(`unknown balancer "${String(kind)}": use one of ${BALANCER_KINDS.join(', ')}.`, [
        { path: 'balancer', message: `unknown balancer "${String(kind)}"` },
      ]);
  }
  try {
    return new MeshBalancer(picker, p2cEwmaPicker(random), { ...opts, random });
  } catch (e) {
    if (e instanceof RangeError) throw new ConfigError(`invalid balancer settings: ${e.message}.`, [{ path: 'balancer', message: e.message }]);
    throw e;
  }
}
