import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { VERSION } from '../src/version.js';

describe('VERSION', () => {
  it('is package.json\'s version (what control planes see as user_agent_version)', () => {
    assert.equal(VERSION, (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version);
  });
});
