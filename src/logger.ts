/** Where the mesh says what it does: one method per level, structured fields optional. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** The default logger: one line per event on stderr, prefixed so it is easy to grep. */
export const consoleLogger: Logger = {
  info: (msg, fields) => console.error(`sidecarless: ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`),
  warn: (msg, fields) => console.error(`sidecarless: warning: ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`),
  error: (msg, fields) => console.error(`sidecarless: error: ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`),
};
