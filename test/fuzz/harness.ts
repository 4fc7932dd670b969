// The fuzzing harness (issue 17 item 3): each target is a fast-check property with an oracle — a
// reference implementation written apart from ours, a round trip, or "only our error classes,
// and never accept what the reference rejects". `npm test` runs every target briefly
// (test/fuzz/fuzz.test.ts, a fresh seed each run, printed on failure); `npm run fuzz -- --minutes N`
// runs them for longer (test/fuzz/run.ts). coverage-guided fuzzing (@jazzer.js/core) does not load
// here: its prebuilt addon needs glibc 2.38, Debian bookworm has 2.36 (docs/reliability.md).
import fc from 'fast-check';

export interface FuzzTarget {
  /** Short name, used by `npm run fuzz -- --target NAME`. */
  readonly name: string;
  /** What is generated and what the oracle is. */
  readonly oracle: string;
  /** The property; built once per run (targets may prepare fixtures first). */
  readonly property: () => Promise<fc.IRawProperty<unknown[], boolean>> | fc.IRawProperty<unknown[], boolean>;
  /** Runs in `npm test`: enough to exercise every branch of the generator, cheap enough for the budget. */
  readonly shortRuns: number;
  /** Known counterexamples, replayed on every run (what an earlier campaign found, now fixed). */
  readonly regressions?: readonly unknown[][];
}

export interface FuzzRun {
  readonly name: string;
  readonly runs: number;
  readonly seed: number;
  readonly ms: number;
  readonly failure?: string;
}

/** Runs `target` for `numRuns` runs, or until `untilMs` (epoch ms) when given; never throws. */
export async function runTarget(target: FuzzTarget, o: { numRuns?: number; untilMs?: number; seed?: number } = {}): Promise<FuzzRun> {
  const seed = o.seed ?? (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
  const started = Date.now();
  const property = await target.property();
  const details = await fc.check(property, {
    seed,
    numRuns: o.untilMs !== undefined ? 2 ** 31 - 1 : (o.numRuns ?? target.shortRuns),
    ...(o.untilMs !== undefined && { interruptAfterTimeLimit: Math.max(1, o.untilMs - Date.now()), markInterruptAsFailure: false }),
    ...(target.regressions && { examples: target.regressions as unknown[][] }),
  });
  const failure = details.failed ? `${fc.defaultReportMessage(details) ?? 'failed'}\n${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance ?? '')}` : undefined;
  return { name: target.name, runs: details.numRuns, seed, ms: Date.now() - started, ...(failure !== undefined && { failure }) };
}

/** Runs `check` and says whether it threw only errors of the given classes (returns the error, or undefined). */
export function onlyThrows(classes: ReadonlyArray<abstract new (...a: never[]) => Error>, check: () => unknown): Error | undefined {
  try {
    check();
    return undefined;
  } catch (e) {
    if (classes.some((c) => e instanceof c)) return e as Error;
    throw e;
  }
}
