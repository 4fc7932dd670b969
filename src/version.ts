/** sidecarless's version, as package.json has it (test/version.test.ts keeps them equal): sent to control planes as user_agent_version. */
export const VERSION = '0.1.0';
