/**
 * Routes of a mesh service: the first route whose match accepts a request supplies its timeout,
 * retry and split settings (Gateway API HTTPRoute `matches`, without precedence sorting: order is
 * the order written). Pure; compiled once per configuration.
 */
import type { RouteConfig } from '../config.js';

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

export function compileRoute<T>(route: RouteConfig, index: number, settings: T): CompiledRoute<T> {
  const tests: Test[] = [];
  const m = route.match;
  if (m.path) {
    const p = m.path;
    if ('exact' in p) tests.push((r) => pathOnly(r.path) === p.exact);
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
  if (m.method !== undefined) {
    const methods = (Array.isArray(m.method) ? m.method : [m.method]).map((x) => x.toUpperCase());
    tests.push((r) => methods.includes(r.method.toUpperCase()));
  }
  for (const [rawName, want] of Object.entries(m.headers ?? {})) {
    const name = rawName.toLowerCase();
    if (typeof want === 'string') tests.push((r) => r.header(name) === want);
    else if ('regex' in want) {
      const re = new RegExp(`^(?:${want.regex})$`);
      tests.push((r) => {
        const v = r.header(name);
        return v !== undefined && re.test(v);
      });
    } else tests.push((r) => (r.header(name) !== undefined) === want.present);
  }
  return {
    name: route.name ?? `#${index}`,
    settings,
    matches: (req) => tests.every((t) => t(req)),
  };
}

export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}
