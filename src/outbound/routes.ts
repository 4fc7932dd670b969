/**
 * Routes of a mesh service: the first route whose match accepts a request supplies its timeout,
 * retry and split settings (Gateway API HTTPRoute `matches`, without precedence sorting: order is
 * the order written). Pure; compiled once per configuration.
 */
import type { RouteMatch } from './settings.js';

export interface RouteRequest {
  readonly method: string;
  /** Path and query as sent (`/charge?x=1`). */
  readonly path: string;
  header(name: string): string | undefined;
}

export interface CompiledRoute<T> {
  readonly name: string;
  readonly settings: T;
  matches(req: RouteRequest): boolean;
}

type Test = (req: RouteRequest) => boolean;

/** Compiles a typed match (settings.ts) into one test per condition; all must hold. */
export function compileRoute<T>(route: { readonly name: string; readonly match: RouteMatch }, settings: T): CompiledRoute<T> {
  const tests: Test[] = [];
  const m = route.match;
  if (m.path) {
    const p = m.path;
    if ('exact' in p) tests.push((r) => pathOnly(r.path) === p.exact);
    else if ('stringPrefix' in p) tests.push((r) => pathOnly(r.path).startsWith(p.stringPrefix));
    else if ('prefix' in p) {
      const prefix = p.prefix.length > 1 && p.prefix.endsWith('/') ? p.prefix.slice(0, -1) : p.prefix;
      tests.push((r) => {
        const path = pathOnly(r.path);
        if (prefix === '/') return true;
        return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47 /* / */);
      });
    } else {
      const re = new RegExp(`^(?:${p.regex})$`);
      tests.push((r) => re.test(pathOnly(r.path)));
    }
  }
  if (m.methods !== undefined && m.methods.length > 0) {
    const methods = m.methods;
    tests.push((r) => methods.includes(r.method.toUpperCase()));
  }
  for (const h of m.headers ?? []) {
    const name = h.name;
    if ('exact' in h) tests.push((r) => r.header(name) === h.exact);
    else if ('regex' in h) {
      const re = new RegExp(`^(?:${h.regex})$`);
      tests.push((r) => {
        const v = r.header(name);
        return v !== undefined && re.test(v);
      });
    } else tests.push((r) => (r.header(name) !== undefined) === h.present);
  }
  return { name: route.name, settings, matches: (req) => tests.every((t) => t(req)) };
}

export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}
