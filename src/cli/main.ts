/** The `sidecarless` executable (dist/cli.js): runs the command, sets the exit code. */
import { processIo } from './args.js';
import { main } from './run.js';

// `sidecarless svid inspect … | head -1`: a closed pipe ends the output, not the process with a stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv.slice(2), processIo).then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    // Only a genuine bug gets here: every error a user can cause is reported by main() in one line.
    process.stderr.write(`sidecarless: internal error: a bug, please report it with the command you ran [ERR_SIDECARLESS_INTERNAL]\n${e?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
